"""The server's process tree: states, threads, and each process's fd table at a glance."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive, var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from svcviz.servers.registry import model_of
from svcviz.tui.widgets.text import ids_by_port, port_of

STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk wait",
    "Z": "zombie",
    "T": "stopped",
    "t": "traced",
    "X": "dead",
    "I": "idle",
}
MAX_BADGES = 12


def tree_order(root_pid: int, processes) -> list[tuple[int, object]]:
    """(depth, process) depth-first from the root; processes whose parent is not in the
    tree (adopted orphans) come last, at depth 0."""
    by_parent: dict[int, list] = {}
    pids = {p.pid for p in processes}
    for process in processes:
        by_parent.setdefault(process.ppid, []).append(process)
    ordered: list[tuple[int, object]] = []

    def walk(process, depth: int) -> None:
        ordered.append((depth, process))
        for child in sorted(by_parent.get(process.pid, ()), key=lambda p: p.pid):
            walk(child, depth + 1)

    roots = [p for p in processes if p.pid == root_pid or p.ppid not in pids]
    for root in sorted(roots, key=lambda p: (p.pid != root_pid, p.pid)):
        walk(root, 0)
    return ordered


def fd_badges(process, client_ids: dict[int, int]) -> Text:
    badges = Text()
    conns = 0
    for fd in process.fds:
        if fd.kind == "listen":
            badges.append(f" {fd.fd} listen ", style="black on cyan")
            badges.append(" ")
        elif fd.kind == "conn":
            conns += 1
            if conns > MAX_BADGES:
                continue
            port = port_of(fd.peer)
            who = f"#{client_ids[port]}" if port in client_ids else f":{port}"
            style = "black on yellow" if fd.tcp_state == "CLOSE_WAIT" else "black on green"
            badges.append(f" {fd.fd} {who} ", style=style)
            badges.append(" ")
    if conns > MAX_BADGES:
        badges.append(f"+{conns - MAX_BADGES} conns", style="dim")
    return badges


class ServerPanel(ScrollView):
    """The tree, a row per process (and per thread where the model has them): a virtual
    list, so only the rows on screen are drawn (200 processes at 10/s add up); the rest
    are a scroll away."""

    DEFAULT_CSS = """
    ServerPanel {
        border: round $primary;
        border-title-color: $accent;
    }
    """
    BORDER_TITLE = "server: processes, threads, fds"

    latest = var(None)
    root_pid = reactive(None)
    processes = reactive(None)  # None until the first sample
    list_threads = reactive(False)
    client_ids = reactive({})

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows: list[tuple[int, object, object]] = []  # (depth, process, thread or None)

    def watch_latest(self, update) -> None:
        if update is None:
            return
        # Most samples find the tree as it was: the same tuple, so nothing is redone.
        self.root_pid, self.processes = update.snapshot.root_pid, update.snapshot.processes
        # A watched server's model is unknown: its threads are listed, as for our threaded ones.
        model = model_of(update.config.model)
        self.list_threads = model is None or model.threaded
        self.client_ids = ids_by_port(update.clients)

    def watch_processes(self) -> None:
        self._order()

    def watch_list_threads(self) -> None:
        self._order()

    def _order(self) -> None:
        self.rows = []
        for depth, process in tree_order(self.root_pid, self.processes or ()):
            self.rows.append((depth, process, None))
            if self.list_threads and not process.zombie:
                self.rows.extend((depth, process, t) for t in process.threads if t.tid != process.pid)
        self.virtual_size = Size(self.size.width, max(1, len(self.rows)))

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_y) + y
        if not self.rows:
            line = Text("" if self.processes is None else "no server process" if y == 0 else "", style="dim")
        elif index >= len(self.rows):
            line = Text("")
        else:
            depth, process, thread = self.rows[index]
            line = process_line(process, depth, self.client_ids) if thread is None else thread_line(thread, depth)
        width = self.scrollable_content_region.width
        line.truncate(width, overflow="ellipsis")
        console = self.app.console
        # The panel's colours under the row's own styles, padded to the width.
        return Strip(console.render_lines(line, console.options.update_width(width), style=self.rich_style)[0], width)


def process_line(process, depth: int, client_ids: dict[int, int]) -> Text:
    line = Text("  " * depth + ("└ " if depth else ""))
    line.append(f"{process.pid} ", style="bold")
    if process.adopted:
        line.append("orphan, adopted by svcviz ", style="bold yellow")
    if process.zombie:
        line.append("zombie", style="bold white on red")
        line.append(" <defunct>", style="red")
    else:
        line.append(STATES.get(process.state, process.state), style="green" if process.state == "R" else "")
        line.append(f"  threads {process.thread_count}  ", style="dim")
        line.append_text(fd_badges(process, client_ids))
    if not process.readable:
        line.append(" (not readable)", style="dim")
    return line


def thread_line(thread, depth: int) -> Text:
    line = Text("  " * (depth + 1) + "· thread ", style="dim")
    line.append(f"{thread.tid} {STATES.get(thread.state, thread.state)}")
    return line
