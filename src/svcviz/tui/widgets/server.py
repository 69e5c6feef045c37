"""The server's process tree: every process, its threads grouped by what they wait in, its fds.

Nothing is hidden: the panel is a virtual list that scrolls (mouse, arrows, page keys when
focused). Identical threads collapse into one row with a count (`×25 futex`), so a
200-thread server fits; a process with many connections shows a count and the first few.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.reactive import reactive, var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from svcviz.observe.architecture import judge
from svcviz.observe.snapshot import STATE_WORDS as STATES
from svcviz.observe.waits import LINK_WORDS, wait_text
from svcviz.plain import plain
from svcviz.tui.widgets.text import ids_by_port, port_of, row_strip

if TYPE_CHECKING:
    from typing import Unpack

    from svcviz.lab import LabUpdate
    from svcviz.observe.architecture import Architecture
    from svcviz.observe.snapshot import Fd, Process, Snapshot, Thread
    from svcviz.tui.widgets.text import WidgetOptions

MAX_BADGES = 6  # connection badges on a process row; the rest is a count
MAX_TITLE = 36  # characters of a process's title on its row
MAX_NAMED = 4  # clients named on a grouped thread row
SCROLL_SLACK = 16  # rows the scrollable height may run past the rows (see _rows_to_scroll)
# fds that show what kind of server this is: an event loop's epoll and eventfd, pipes.
MARKS = {"epoll": "black on magenta", "eventfd": "black on magenta", "pipe": "black on blue"}
TRAILING_NUMBER = re.compile(r"[-_ ]?\d+$")


def tree_order(root_pid: int | None, processes: Sequence[Process]) -> list[tuple[int, Process]]:
    """(depth, process) depth-first from the root; processes whose parent is not in the
    tree (adopted orphans) come last, at depth 0."""
    by_parent: dict[int, list[Process]] = {}
    pids = {p.pid for p in processes}
    for process in processes:
        by_parent.setdefault(process.ppid, []).append(process)
    ordered: list[tuple[int, Process]] = []

    def walk(process: Process, depth: int) -> None:
        ordered.append((depth, process))
        for child in sorted(by_parent.get(process.pid, ()), key=lambda p: p.pid):
            walk(child, depth + 1)

    roots = [p for p in processes if p.pid == root_pid or p.ppid not in pids]
    for root in sorted(roots, key=lambda p: (p.pid != root_pid, p.pid)):
        walk(root, 0)
    return ordered


def who(peer: str | None, client_ids: Mapping[int, int]) -> str:
    """A connection's client: `#2` for one of ours, `:40000` for another."""
    port = port_of(peer)
    return f"#{client_ids[port]}" if port is not None and port in client_ids else f":{port}"


def fd_mark(fd: Fd) -> str | None:
    """`epoll`, `eventfd`, `pipe` for the fds that show a server's shape, else None."""
    if fd.link in LINK_WORDS:
        word = LINK_WORDS[fd.link]
        return word if word in MARKS else None
    return "pipe" if fd.link.startswith("pipe:") else None


def fd_badges(process: Process, client_ids: Mapping[int, int], waited_on: int | None = None) -> Text:
    """epoll/eventfd/pipe marks first (short, and they tell the shape), the listening
    sockets, then the connections; with many, `N conns` before all of them (a worker's
    count must not be cut off the row) and the first few connections after. waited_on:
    the fd the process's wait already names (`epoll_wait(10 epoll)`): no mark of its own."""
    badges = Text()
    conns = [fd for fd in process.fds if fd.kind == "conn"]
    if len(conns) > MAX_BADGES:
        badges.append(f"{len(conns)} conns ", style="bold")
    marks = Counter(mark for fd in process.fds if fd.fd != waited_on and (mark := fd_mark(fd)))
    for mark, count in sorted(marks.items()):
        badges.append(f" {mark}{f' ×{count}' if count > 1 else ''} ", style=MARKS[mark])
        badges.append(" ")
    listening = [fd.fd for fd in process.fds if fd.kind == "listen"]
    if len(listening) > 2:  # reuseport (nginx: one per worker, all in each): one badge, room for the connections
        consecutive = listening[-1] - listening[0] == len(listening) - 1
        numbers = f"{listening[0]}-{listening[-1]}" if consecutive else ",".join(map(str, listening))
        badges.append(f" {numbers} listen ", style="black on cyan")  # the numbers say how many
        badges.append(" ")
    else:
        for number in listening:
            badges.append(f" {number} listen ", style="black on cyan")
            badges.append(" ")
    for fd in conns[:MAX_BADGES]:
        style = "black on yellow" if fd.tcp_state == "CLOSE_WAIT" else "black on green"
        badges.append(f" {fd.fd} {who(fd.peer, client_ids)} ", style=style)
        badges.append(" ")
    if len(conns) > MAX_BADGES:
        badges.append(f"+{len(conns) - MAX_BADGES} ", style="dim")
    return badges


def wait_label(thread: Thread, process: Process, client_ids: Mapping[int, int]) -> str:
    """What the thread waits in, its connection named by client: `read(4 <- #2)`."""
    if thread.syscall and thread.syscall_fd is not None and thread.state not in ("R", "Z"):
        fd = next((f for f in process.fds if f.fd == thread.syscall_fd), None)
        if fd is not None and fd.kind == "conn":
            return f"{thread.syscall}({fd.fd} <- {who(fd.peer, client_ids)})"
    return plain(wait_text(thread, process))  # an fd's link is a path the process named


class ThreadGroup:
    """Threads of one process with the same name and the same wait (connections aside)."""

    def __init__(self, pid: int, name: str, wait: str) -> None:
        self.pid, self.name, self.wait = pid, name, wait
        self.threads: list[Thread] = []
        self.names: set[str] = set()
        self.clients: list[str] = []  # `4 <- #2` for each connection its threads read
        self.first_wait = ""  # the first thread's own wait, fd and all: what a group of one shows


def thread_groups(process: Process, client_ids: Mapping[int, int]) -> list[ThreadGroup]:
    """The process's threads, grouped by name (its trailing number aside: io_thd_1, io_thd_2)
    and wait; threads each blocked on their own connection group as one `read(<- conn)`.
    The main thread (tid == pid) first."""
    groups: dict[tuple[bool, str, str], ThreadGroup] = {}  # (main thread, name, wait)
    for thread in sorted(process.threads, key=lambda t: (t.tid != process.pid, t.tid)):
        name = plain(thread.name)
        wait = own = wait_label(thread, process, client_ids)
        conn = None
        if "<-" in wait and thread.tid != process.pid:
            conn = wait.split("(", 1)[1].rstrip(")")
            wait = f"{thread.syscall}(<- conn)"
        key = (thread.tid == process.pid, TRAILING_NUMBER.sub("", name) or name, wait)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ThreadGroup(process.pid, key[1], wait)
            group.first_wait = own
        group.threads.append(thread)
        group.names.add(name)
        if conn:
            group.clients.append(conn)
    rows: list[ThreadGroup] = []
    for group in groups.values():
        if group.clients and len(group.threads) <= MAX_NAMED:  # a few: each thread with its client
            rows.extend(_alone(process, thread, client_ids) for thread in group.threads)
        else:
            rows.append(group)
    return rows


def _alone(process: Process, thread: Thread, client_ids: Mapping[int, int]) -> ThreadGroup:
    group = ThreadGroup(process.pid, plain(thread.name), wait_label(thread, process, client_ids))
    group.threads.append(thread)
    group.names.add(group.name)
    group.first_wait = group.wait
    return group


def architecture_line(architecture: Architecture, evidence_shown: bool) -> list[Text]:
    line = Text("architecture: ", style="bold")
    line.append(architecture.name, style="bold magenta")
    if architecture.reuseport:
        line.append("  reuseport", style="bold cyan")
    if not evidence_shown:
        line.append("   (a: why)", style="dim")
        return [line]
    return [line, *(Text(f"  · {plain(sentence)}", style="dim") for sentence in architecture.evidence)]


class ServerPanel(ScrollView, can_focus=True):
    """The tree, a row per process and per thread group: a virtual list, so only the rows
    on screen are drawn (200 processes at 10/s add up); the rest are a scroll away."""

    DEFAULT_CSS = """
    ServerPanel {
        border: round $primary;
        border-title-color: $accent;
    }
    ServerPanel:focus {
        border: round $accent;
    }
    """
    BORDER_TITLE = "server: processes, threads, fds"
    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
    ]

    latest: var[LabUpdate | None] = var(None)
    evidence_shown = reactive(False)

    def __init__(self, **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        # (depth, process, None) for a process row, (depth, process, group) for a thread group,
        # (0, None, Text) for the architecture's lines.
        self.rows: list[tuple[int, Process | None, ThreadGroup | Text | None]] = []
        self.processes: tuple[Process, ...] | None = None  # None until the first sample
        self.architecture: Architecture | None = None
        self.client_ids: dict[int, int] = {}
        self._drawn: tuple[tuple[object, ...], ...] = ()  # what the rows were made from
        self._snapshot: Snapshot  # the sample they were made from: set with _drawn
        self._base = Style()
        self._width = 0
        # id(process) -> (process, depth, strip): a process row as last drawn, and what it depended on
        self._strips: dict[int, tuple[Process, int, Strip]] = {}
        self._strips_for: tuple[object, ...] = ()

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is None:
            return
        snapshot = update.snapshot
        client_ids = ids_by_port(update.clients)
        # Most samples find the tree as it was: the same tuples, so nothing is redone.
        made_from = (snapshot.processes, snapshot.connections, snapshot.listen)
        unchanged = (
            self._drawn
            and snapshot.root_pid == self._snapshot.root_pid
            and all(a is b for a, b in zip(made_from, self._drawn, strict=True))
        )
        if unchanged and client_ids == self.client_ids:
            return
        self._drawn, self._snapshot = made_from, snapshot
        self.processes, self.client_ids = snapshot.processes, client_ids
        self._order()

    def watch_evidence_shown(self) -> None:
        if self.processes is not None:
            self._order()

    def action_toggle_evidence(self) -> None:
        self.evidence_shown = not self.evidence_shown

    def _order(self) -> None:
        self.rows = []
        snapshot = self._snapshot
        if self.processes:
            self.architecture = judge(snapshot)
            self.rows.extend((0, None, line) for line in architecture_line(self.architecture, self.evidence_shown))
            self.tooltip = "\n".join(plain(s) for s in self.architecture.evidence) or None
        shown = {id(process) for process in self.processes or ()}
        self._strips = {key: kept for key, kept in self._strips.items() if key in shown}
        for depth, process in tree_order(snapshot.root_pid, snapshot.processes):
            self.rows.append((depth, process, None))
            if not process.zombie and len(process.threads) > 1:
                self.rows.extend((depth, process, group) for group in thread_groups(process, self.client_ids))
        self._fit()
        self.refresh()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        height = self._rows_to_scroll(len(self.rows))
        if height != self.virtual_size.height or self.size.width != self.virtual_size.width:
            self.virtual_size = Size(self.size.width, height)

    def _rows_to_scroll(self, rows: int) -> int:
        """The scrollable height. Setting virtual_size lays out the whole screen (it is a
        layout reactive): on a fork server whose process count moves every sample that was
        most of what a sample cost. Past one screen, so, it grows with room to spare and
        shrinks only by SCROLL_SLACK at a time: at most SCROLL_SLACK blank rows below."""
        current, room = self.virtual_size.height, self.scrollable_content_region.height
        if rows <= room or not room:
            return max(1, rows)  # no scrollbar (or not laid out yet): exact
        if current - SCROLL_SLACK < rows <= current:
            return current
        return rows + SCROLL_SLACK // 2

    def render_lines(self, crop: Region) -> list[Strip]:
        # Once per paint, not once a row: the panel's style and width (each is a lookup
        # through the styles), and the strips of the last paint whose rows are unchanged.
        self._base = self.rich_style
        self._width = self.scrollable_content_region.width
        key = (self._base, self._width, self.client_ids)
        if key != self._strips_for:
            self._strips, self._strips_for = {}, key
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if self._width <= 0:  # laid out with no room yet (a resize, a panel swapped in): nothing to draw
            return Strip.blank(0)
        index = round(self.scroll_y) + y
        if not self.rows:
            return self._strip(Text("" if self.processes is None or y else "no server process", style="dim"))
        if index >= len(self.rows):
            return Strip.blank(self._width, self._base)
        depth, process, row = self.rows[index]
        if isinstance(row, Text):  # the architecture's lines
            return self._strip(row.copy())
        if isinstance(row, ThreadGroup):
            return self._strip(group_line(row, depth))
        assert process is not None  # a process row: (depth, process, None)
        # A process row is kept while its Process is the same object (the observer hands back
        # the same one while nothing of it changed): rows persist between scans, htop's way.
        kept = self._strips.get(id(process))
        if kept is None or kept[0] is not process or kept[1] != depth:
            strip = self._strip(process_line(process, depth, self.client_ids, self._width))
            kept = self._strips[id(process)] = (process, depth, strip)
        return kept[2]

    def _strip(self, line: Text) -> Strip:
        return row_strip(line, self._width, self._base, self.app.console)


def process_line(process: Process, depth: int, client_ids: Mapping[int, int], width: int | None = None) -> Text:
    """A process's row; where it would not fit in width, a sleeping process's `sleeping`
    goes (`in epoll_wait(10 epoll)` says it), before its badges are cut off."""
    line = _process_line(process, depth, client_ids, sleeping_said=True)
    if width is not None and line.cell_len > width and process.state == "S" and len(process.threads) == 1:
        return _process_line(process, depth, client_ids, sleeping_said=False)
    return line


def _process_line(process: Process, depth: int, client_ids: Mapping[int, int], sleeping_said: bool) -> Text:
    line = Text("  " * depth + ("└ " if depth else ""))
    line.append(f"{process.pid} ", style="bold")
    if process.adopted:  # before the title: a long one must not hide it
        line.append("orphan, adopted by svcviz ", style="bold yellow")
    title = plain(process.title or process.name)
    # A long command line must not push the wait and the fds off the row.
    line.append(title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…", style="cyan")
    line.append(" ")
    if process.user:
        line.append(f"{plain(process.user)} ", style="dim")
    if process.zombie:
        line.append("zombie", style="bold white on red")
        line.append(" <defunct>", style="red")
    else:
        waited_on = None
        if len(process.threads) == 1:  # one thread: its wait is the process's
            wait = wait_label(process.threads[0], process, client_ids)
            if sleeping_said or wait == "running":
                line.append(STATES.get(process.state, process.state), style="green" if process.state == "R" else "")
            if wait != "running":
                line.append(f" in {wait}" if sleeping_said else f"in {wait}", style="yellow")
                waited_on = process.threads[0].syscall_fd
        else:  # its threads say what each waits in, on the rows below
            if process.state != "S":
                line.append(f"{STATES.get(process.state, process.state)} ", style="bold")
            line.append(f"threads {process.thread_count}", style="dim")
        line.append("  ")
        # An nginx worker's row at 160 columns: `sleeping in epoll_wait(10 epoll)` says the epoll.
        line.append_text(fd_badges(process, client_ids, waited_on))
    if not process.readable:
        line.append(" (not readable)", style="dim")
    return line


def group_line(group: ThreadGroup, depth: int) -> Text:
    line = Text("  " * (depth + 1) + "· ", style="dim")
    threads = group.threads
    if len(threads) == 1:
        # The main thread (tid = pid) is the one a lecture's server accepts in.
        main = threads[0].tid == group.pid
        line.append(f"{'main' if main else 'thread'} {threads[0].tid} ", style="dim")
    else:
        line.append(f"×{len(threads)} ", style="bold")
    name = next(iter(group.names)) if len(group.names) == 1 else f"{group.name}*"
    line.append(name or "-", style="cyan")
    line.append(" ")
    wait = group.first_wait if len(threads) == 1 else group.wait
    line.append(wait, style="green" if wait == "running" else "yellow")
    if group.clients and len(threads) > 1:
        line.append(": " + " ".join(c.split(" <- ")[1] for c in group.clients[:MAX_NAMED]))
        if len(group.clients) > MAX_NAMED:
            line.append(f" +{len(group.clients) - MAX_NAMED}", style="dim")
    return line
