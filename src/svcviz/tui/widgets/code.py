"""The code panel (`v`): the running model's own source, each line marked with who is on it.

`<- 4242` on `cfd = acceptor.accept(fd)` while the server waits for a client; `<- 4250
4251` on handle_connection's read while two children wait for their clients. Where each
thread is comes from the call the kernel says it is blocked in (tui/source.py maps calls to
the models' marked lines). A traced call (`t`) flashes its line for a moment. For a server
svcviz did not start there is no source: the panel lists each process's threads by wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive, var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from svcviz.observe.waits import wait_text
from svcviz.plain import plain
from svcviz.servers.registry import model_of
from svcviz.tui import source
from svcviz.tui.widgets.text import row_strip

if TYPE_CHECKING:
    from typing import Unpack

    from svcviz.lab import LabUpdate
    from svcviz.observe.snapshot import Snapshot
    from svcviz.trace.events import TraceEvent
    from svcviz.tui.widgets.text import WidgetOptions

THEME = "monokai"
FLASH_SECONDS = 0.8
MARK_STYLE = "bold black on yellow"
INSIDE_STYLE = "black on #87875f"
FLASH_STYLE = "on #5f5f00"
NUMBER_WIDTH = 4


def highlighted(section: source.Section) -> list[Text]:
    """Each line of the section, coloured as Python, on the panel's own background."""
    from rich.syntax import Syntax  # and pygments: not at start-up, nor ever for a server svcviz did not start

    code = "\n".join(line.text for line in section.lines)
    text = Syntax(code, "python", theme=THEME).highlight(code)
    lines = text.split("\n", allow_blank=True)
    for line in lines:
        line.style = ""
        line.spans = [
            type(span)(span.start, span.end, Style(color=span.style.color, bold=span.style.bold))
            for span in line.spans
            if isinstance(span.style, Style)
        ]
    return lines[: len(section.lines)]


def mark_text(here: tuple[source.Here, ...], inside: str = "", width: int = 0) -> Text:
    """`<- 4250 4251`; for a call to a shared function, `<- 4250 4251 in handle_connection`;
    past width cells (0: no limit), the first pids and how many more (`<- 4250 4251 +8`)."""
    names = [str(h.tid) if h.call != "zombie" else f"{h.tid} zombie" for h in here]
    where = f" in {inside}" if inside else ""
    shown = len(names)
    while True:
        more = f" +{len(names) - shown}" if shown < len(names) else ""
        text = f" <- {' '.join(names[:shown])}{more}{where} "
        if not width or len(text) <= width or shown == 1:
            return Text(text, INSIDE_STYLE if inside else MARK_STYLE)
        shown -= 1


def waits_by_process(snapshot: Snapshot) -> list[Text]:
    """Watch mode: no source, so each process (thread group) and its threads' waits."""
    lines = [Text("no source: svcviz did not start this server", style="bold"), Text("")]
    for process in snapshot.processes:
        line = Text(f"{process.pid} ", style="bold")
        line.append(plain(process.title or process.name))
        lines.append(line)
        if process.zombie:
            lines.append(Text("    zombie", style="red"))
            continue
        groups: dict[str, list[int]] = {}
        for thread in process.threads:
            groups.setdefault(wait_text(thread, process), []).append(thread.tid)
        for wait, tids in groups.items():
            lines.append(
                Text(f"    {plain(wait)}: " + " ".join(map(str, tids)), style="dim" if wait == "running" else "")
            )
    return lines


class CodePanel(ScrollView):
    DEFAULT_CSS = """
    CodePanel {
        border: round $primary;
        border-title-color: $accent;
        height: 1fr;
    }
    """
    BORDER_TITLE = "code"

    latest: var[LabUpdate | None] = var(None)
    model: reactive[str | None] = reactive(None)  # the model's name; None until the first sample
    placed: reactive[source.Placed | None] = reactive(None)  # of the newest sample

    def __init__(self, **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        self.sections: tuple[source.Section, ...] = ()
        self.rows: list[tuple[int, int] | Text] = []  # (section, line) of the source, or a plain row
        self._colours: list[list[Text]] = []
        self._flash: dict[tuple[int, int], float] = {}  # (section, line) -> until when
        self._watch_rows: list[Text] = []

    def on_mount(self) -> None:
        self.set_interval(0.2, self._fade)

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is None:
            return
        self.model = update.config.model
        if not self.display:
            return  # hidden: nothing to place (show() places the newest at once)
        if not self.sections:
            self._watch_rows = waits_by_process(update.snapshot) if model_of(update.config.model) is None else []
            self._rows()
            self.refresh()
            return
        placed = source.place(self.sections, update.snapshot)
        if placed != self.placed:
            self.placed = placed

    def show(self, shown: bool) -> None:
        self.display = shown
        if shown:
            self.watch_latest(self.latest)

    def watch_model(self, name: str | None) -> None:
        model = model_of(name) if name else None
        self.sections = source.document(model.module) if model is not None else ()
        self._colours = [highlighted(section) for section in self.sections]
        self.border_title = f"code: {self.sections[0].path}" if self.sections else "code: no source"
        self.placed = None
        self._rows()

    def watch_placed(self, placed: source.Placed | None) -> None:
        self._rows()
        if placed is not None and placed.at and self.is_mounted:
            # After the layout: a panel just shown has no height yet to scroll in.
            self.call_after_refresh(self._keep_in_view, min(placed.at))
        self.refresh()

    def _rows(self) -> None:
        if not self.sections:
            self.rows = list(self._watch_rows)
        else:
            self.rows = []
            for s, section in enumerate(self.sections):
                if s:
                    self.rows += [Text(""), Text(f"── called from above: {section.title}", style="bold")]
                self.rows += [(s, i) for i in range(len(section.lines))]
            elsewhere = self.placed.elsewhere if self.placed else ()
            if elsewhere:
                self.rows += [Text(""), Text("not on a marked line:", style="bold")]
                self.rows += [Text(f"  {tid} {plain(what)}", style="dim") for tid, what in elsewhere]
        self.virtual_size = Size(self.size.width, max(1, len(self.rows)))

    def _keep_in_view(self, spot: tuple[int, int]) -> None:
        """Scroll so the first marked line shows, when it does not."""
        if spot not in self.rows:
            return
        y = self.rows.index(spot)
        top, height = round(self.scroll_y), self.scrollable_content_region.height
        if not (top <= y < top + height):
            self.scroll_to(y=max(0, y - height // 3), animate=False)

    def flash(self, events: Iterable[TraceEvent]) -> None:
        """Traced calls: light their lines for a moment (the pid decides main-only lines)."""
        root = self.latest.snapshot.root_pid if self.latest else None
        until = time.monotonic() + FLASH_SECONDS
        for event in events:
            word = source.WORD_OF.get(event.syscall)
            spot = source.line_for(self.sections, word, main=event.pid == root) if word else None
            if spot is not None:
                self._flash[spot] = until
        if self._flash:
            self.refresh()

    def flashing(self) -> set[tuple[int, int]]:
        now = time.monotonic()
        return {spot for spot, until in self._flash.items() if until > now}

    def _fade(self) -> None:
        if self._flash:
            before = len(self._flash)
            self._flash = {spot: until for spot, until in self._flash.items() if until > time.monotonic()}
            if len(self._flash) != before:
                self.refresh()

    def line_text(self, index: int, width: int = 0) -> Text:
        """Row index as drawn in width cells (0: whole): line number, code, and who is
        there, the code cut short so the mark always shows."""
        row = self.rows[index]
        if isinstance(row, Text):
            return row.copy()
        s, i = row
        line = Text(f"{self.sections[s].lines[i].number:>{NUMBER_WIDTH}} ", style="dim")
        line.append_text(self._colours[s][i])
        line.rstrip()
        here = self.placed.at.get(row) if self.placed else None
        inside = self.placed.inside.get(row) if self.placed and not here else None
        if here or inside:
            budget = max(12, width // 2) if width else 0
            mark = mark_text(here, width=budget) if here else mark_text(inside or (), self._callee(s, i), budget)
            if width:
                line.truncate(max(NUMBER_WIDTH + 1, width - mark.cell_len - 1), overflow="ellipsis")
            line.append(" ")
            line.append_text(mark)
        if row in self.flashing():
            line.stylize(FLASH_STYLE)
        return line

    def _callee(self, s: int, i: int) -> str:
        """Which shared function the line at (s, i) calls, of those shown below it."""
        for section in self.sections[s + 1 :]:
            if (s, i) in source.calls_of(self.sections, section.function, before=s + 1):
                return section.function
        return ""

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if width <= 0:  # laid out with no room yet (a resize, the panel just shown): nothing to draw
            return Strip.blank(0)
        line = self.line_text(index, width) if index < len(self.rows) else Text("")
        return row_strip(line, width, self.rich_style, self.app.console)
