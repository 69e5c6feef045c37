"""Sparklines of the last minute: processes, zombies, threads, queue length."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from svcviz.tui.history import SERIES, History
from svcviz.tui.widgets.text import Panel

if TYPE_CHECKING:
    from typing import Unpack

    from svcviz.lab import LabUpdate
    from svcviz.tui.widgets.text import WidgetOptions


class Figure(Widget):
    """The newest value of a series, right of its sparkline."""

    DEFAULT_CSS = """
    Figure {
        width: 6;
        text-align: right;
    }
    """

    value = reactive(0)

    def render(self) -> str:
        return str(self.value)


class SparksPanel(Panel):
    DEFAULT_CSS = """
    SparksPanel {
        border: round $secondary;
    }
    SparksPanel Horizontal {
        height: 1;
    }
    SparksPanel Label {
        width: 10;
        text-style: bold;
    }
    SparksPanel Sparkline {
        width: 1fr;
    }
    SparksPanel #spark-zombies > .sparkline--max-color {
        color: $error;
    }
    SparksPanel #spark-zombies > .sparkline--min-color {
        color: $error 30%;
    }
    """
    BORDER_TITLE = "last minute"

    def __init__(self, **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        self.history = History()
        self._model: str | None = None

    def compose(self) -> ComposeResult:
        for name in SERIES:
            with Horizontal():
                yield Label(name)
                yield Sparkline((), id=f"spark-{name}")
                yield Figure(id=f"figure-{name}")

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is None:
            return
        if update.config.model != self._model:  # a new lesson: its own minute, not the last model's
            self.history, self._model = History(), update.config.model
        self.history.add(update.snapshot)
        for name in SERIES:
            self.query_one(f"#spark-{name}", Sparkline).data = self.history.series(name)
            self.query_one(f"#figure-{name}", Figure).value = self.history.latest(name)
