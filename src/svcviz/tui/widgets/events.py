"""The time-stamped log: fork, exit->zombie, reaped, accept, queued, refused, dropped, cap..."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive

from svcviz.plain import plain
from svcviz.tui.widgets.text import Panel, one_per_row

KEEP = 500
COLOURS = {
    "fork": "green",
    "exit": "red",
    "reaped": "cyan",
    "adopted": "yellow",
    "accept": "green",
    "queued": "yellow",
    "dropped": "bold red",
    "closed": "dim",
    "cap": "bold white on red",
    "error": "bold red",
    "server": "bold",
    "client": "",
    "thread_start": "green",
    "thread_exit": "dim",
}


class EventsPanel(Panel):
    BORDER_TITLE = "events"

    log = reactive(())  # the newest KEEP events, oldest first: bound to the app's event_log

    def render(self) -> Text:
        height, width = self.content_size.height, self.content_size.width
        shown = self.log[-height:] if height else self.log
        lines: list[Text] = []
        for event in shown:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.time)) + f".{int(event.time * 10) % 10}"
            line = Text(f"{stamp} ", style="dim")
            # The text names its kind ("fork 4250 ...", "accept ..."): the colour tells it apart.
            # Plain: an event may quote a server's own words.
            line.append(plain(event.text), style=COLOURS.get(event.kind, ""))
            lines.append(line)
        if not lines:
            return Text("no events yet", style="dim")
        if width <= 0:
            return one_per_row(lines)
        # Wrapped, not cut: an event's point is often its last words. The newest rows that fit.
        rows = [row for line in lines for row in line.wrap(self.app.console, width, overflow="fold")]
        return one_per_row(rows[-height:] if height else rows)
