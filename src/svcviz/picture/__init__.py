"""The picture: the kernel's objects drawn as the lecture draws them (clients, the listening
socket and its queue, processes with their fd tables, a line per connection)."""

from svcviz.picture.draw import draw
from svcviz.picture.layout import Picture, layout
from svcviz.picture.svg import picture_to_svg

__all__ = ["Picture", "draw", "layout", "picture_to_svg"]
