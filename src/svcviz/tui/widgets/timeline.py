"""The replay's time line: where the events are, where we are, playing or not, how fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from svcviz.tui.widgets.events import COLOURS

if TYPE_CHECKING:
    from typing import Unpack

    from svcviz.tui.widgets.text import WidgetOptions

# Which event of a column gives it its mark: the ones a lesson is about first.
LOUDEST = ("exit", "dropped", "cap", "error", "reaped", "fork", "accept", "queued", "server", "client")


class Timeline(Widget):
    DEFAULT_CSS = """
    Timeline {
        height: 1;
        background: $panel;
    }
    """

    position = reactive(0.0)  # seconds from the first sample
    duration = reactive(0.0)
    playing = reactive(False)
    speed = reactive(1.0)

    def __init__(self, event_times: Sequence[tuple[float, str]], **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        self.event_times = event_times  # (seconds from the first sample, kind), in order

    def render(self) -> Text:
        label = Text(f" {'▶ playing' if self.playing else '‖ paused'} {self.speed:g}x ", style="bold")
        label.append(f"{self.position:6.1f} / {self.duration:.1f} s ")
        width = max(10, self.content_size.width - label.cell_len - 1)
        columns = [("─", "dim")] * width
        span = self.duration or 1.0
        marks: dict[int, str] = {}
        for seconds, kind in self.event_times:
            column = min(width - 1, int(seconds / span * (width - 1) + 0.5))
            held = marks.get(column)
            if held is None or _rank(kind) < _rank(held):
                marks[column] = kind
        for column, kind in marks.items():
            columns[column] = ("┃", COLOURS.get(kind) or "white")
        here = min(width - 1, int(self.position / span * (width - 1) + 0.5))
        columns[here] = ("●", "bold reverse")
        line = label
        for char, style in columns:
            line.append(char, style=style)
        return line


def _rank(kind: str) -> int:
    return LOUDEST.index(kind) if kind in LOUDEST else len(LOUDEST)
