"""Sparklines of the last minute: processes, zombies, threads, queue length."""

from __future__ import annotations

from rich.text import Text

from svcviz.tui.history import SERIES, History
from svcviz.tui.widgets.text import Panel, one_per_row

BARS = "▁▂▃▄▅▆▇█"
LABEL = 10
FIGURE = 6


def spark(values: list[int | None]) -> str:
    peak = max((v for v in values if v is not None), default=0)
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        elif peak == 0:
            out.append(BARS[0])
        else:
            out.append(BARS[min(len(BARS) - 1, value * (len(BARS) - 1) // peak)])
    return "".join(out)


class SparksPanel(Panel):
    def __init__(self, history: History, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history = history

    def build(self) -> Text:
        width = max(0, self.content_size.width - LABEL - FIGURE)
        lines = []
        columns = self.history.all_columns(width)
        for name in SERIES:
            line = Text(f"{name:<{LABEL}}", style="bold")
            line.append(spark(columns[name]), style="red" if name == "zombies" else "cyan")
            line.append(f"{self.history.latest(name):>{FIGURE}}")
            lines.append(line)
        return one_per_row(lines)
