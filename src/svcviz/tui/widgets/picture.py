"""The picture panel: the kernel's objects drawn as the lecture draws them.

Laid out and painted by svcviz.picture from the same snapshot the other panels read. The
lab samples ten times a second and most samples change nothing: the picture is laid out
again only when what it draws changed, and painted only then. What is new or moved (a
process box beside its parent, a connection gone from a queue slot to a process) stands
out for a moment, so the eye can follow it; a timer fades that, never the sampling.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.strip import Strip

from svcviz.tui.widgets.text import Panel

if TYPE_CHECKING:  # svcviz.picture is imported once the panel is first drawn: off, it costs the start nothing
    from typing import Unpack

    from svcviz.clients import ClientView
    from svcviz.lab import LabUpdate
    from svcviz.observe.snapshot import Snapshot
    from svcviz.picture.layout import Picture
    from svcviz.tui.widgets.text import WidgetOptions

FRESH_SECONDS = 1.5  # how long a new or moved item stands out
FADE_TICK = 0.25


def moved(before: Picture | None, after: Picture) -> set[str]:
    """Keys drawn now that were not drawn before, or whose lines now join something else."""
    if before is None or before.off:
        return set()
    old_boxes = {b.key for b in before.boxes}
    fresh = {b.key for b in after.boxes if b.key not in old_boxes}
    old_chips = {c.key for c in before.chips}
    old_joins: dict[str, set[str]] = {}
    for wire in before.wires:
        old_joins.setdefault(wire.src, set()).add(wire.dst)
    new_joins: dict[str, set[str]] = {}
    for wire in after.wires:
        new_joins.setdefault(wire.src, set()).add(wire.dst)
    for chip in after.chips:
        if chip.key not in old_chips or new_joins.get(chip.key, set()) != old_joins.get(chip.key, set()):
            fresh.add(chip.key)
    return fresh


class PicturePanel(Panel):
    DEFAULT_CSS = """
    PicturePanel {
        height: 1fr;
    }
    """
    BORDER_TITLE = "the picture: clients, the listening socket, processes and their fds (g: the panels)"

    def __init__(self, **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        self._data: tuple[Snapshot, tuple[ClientView, ...], str] | None = None  # (snapshot, clients, model)
        self._key: tuple[object, ...] | None = None  # drawn_key of the picture laid out
        self.picture: Picture | None = None
        self._fresh: dict[str, float] = {}  # key -> when it stops standing out
        self._strips: list[Strip] = []
        self.builds = 0  # layouts made: how often the sampling really changed the picture

    def on_mount(self) -> None:
        self.set_interval(FADE_TICK, self._fade)

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is not None:
            self.show(update.snapshot, update.clients, update.config.model)

    def show(self, snapshot: Snapshot, clients: Iterable[ClientView], model: str) -> None:
        self._data = (snapshot, tuple(clients), model)
        self._rebuild()

    def on_resize(self) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        if self._data is None or not self.display:
            return  # hidden (g): no layout at all; shown again, it is built from the newest
        from svcviz.picture.layout import drawn_key, layout

        snapshot, clients, model = self._data
        width, height = self.content_size
        # The observer hands back equal objects while nothing changed: comparing is cheap.
        key = drawn_key(snapshot, clients, model)
        if (
            key == self._key
            and self.picture is not None
            and (self.picture.width, self.picture.height) == (width, height)
        ):
            return
        self._key = key
        picture = layout(snapshot, clients, width, height, model)
        self.builds += 1
        if self.picture is not None and (self.picture.width, self.picture.height) == (width, height):
            until = time.monotonic() + FRESH_SECONDS
            self._fresh.update((k, until) for k in moved(self.picture, picture))
        self.picture = picture
        self._paint()

    def _fade(self) -> None:
        if not self._fresh:
            return
        now = time.monotonic()
        still = {k: until for k, until in self._fresh.items() if until > now}
        if len(still) != len(self._fresh):
            self._fresh = still
            if self.picture is not None:
                self._paint()

    def _paint(self) -> None:
        from svcviz.picture.draw import paint

        assert self.picture is not None  # painted only once laid out
        width = self.picture.width
        self._strips = [Strip(row, width) for row in paint(self.picture, frozenset(self._fresh)).segments()]
        self.refresh()

    @property
    def fresh(self) -> frozenset[str]:
        return frozenset(self._fresh)

    def render_line(self, y: int) -> Strip:
        strip = self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)
        return strip.apply_style(self.rich_style)

    @property
    def plain(self) -> str:
        """What the panel shows, as text (for tests and the tmux check)."""
        return "\n".join(strip.text for strip in self._strips)

    def styles_shown(self) -> set[str]:
        return {str(seg.style) for strip in self._strips for seg in strip if seg.style}
