"""The dashboard's panels. Each only renders data it is handed; none reads the kernel."""

from svcviz.tui.widgets.clients import ClientsPanel
from svcviz.tui.widgets.events import EventsPanel
from svcviz.tui.widgets.header import LabHeader
from svcviz.tui.widgets.lesson import LessonPanel
from svcviz.tui.widgets.listen import ListenPanel
from svcviz.tui.widgets.picture import PicturePanel
from svcviz.tui.widgets.server import ServerPanel
from svcviz.tui.widgets.sparks import SparksPanel

__all__ = [
    "ClientsPanel",
    "EventsPanel",
    "LabHeader",
    "LessonPanel",
    "ListenPanel",
    "PicturePanel",
    "ServerPanel",
    "SparksPanel",
]
