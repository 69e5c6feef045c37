"""The time-stamped log: fork, exit->zombie, reaped, accept, queued, refused, dropped, cap...

With tracing on (`t`), the server's system calls join it, dimmed, in time order; `y` hides
and shows them. They are kept apart from the lab's events, so a busy trace never pushes a
fork or a reap out of the log.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive

from svcviz.observe.snapshot import Event
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
    "syscall": "dim",
}


class EventsPanel(Panel):
    BORDER_TITLE = "events"

    # The newest KEEP events, oldest first: bound to the app's event_log. Not named `log`:
    # that is Textual's logger, which Textual itself calls on a widget (timers, warnings).
    entries: reactive[tuple[Event, ...]] = reactive(())
    syscalls: reactive[tuple[Event, ...]] = reactive(())  # the newest KEEP traced calls, as events of kind "syscall"
    show_syscalls = reactive(True)

    def watch_show_syscalls(self, shown: bool) -> None:
        self.border_subtitle = "" if shown else "syscalls hidden (y shows)"

    def render(self) -> Text:
        height, width = self.content_size.height, self.content_size.width
        log: Sequence[Event] = self.entries
        if self.show_syscalls and self.syscalls:
            tail = height or KEEP
            log = list(heapq.merge(log[-tail:], self.syscalls[-tail:], key=lambda e: e.time))
        shown = log[-height:] if height else log
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
