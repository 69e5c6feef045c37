"""The listening sockets: each one's accept queue and holder (under SO_REUSEPORT each has its
own), who waits in them, who is half-open on the server's side, who knocks at a full one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive

from svcviz.observe.snapshot import CONN_STATE_WORDS, Connection, ListenSocket
from svcviz.tui.widgets.text import Panel, fit, ids_by_port, port_of

if TYPE_CHECKING:
    from typing import Unpack

    from svcviz.lab import LabUpdate
    from svcviz.tui.widgets.text import WidgetOptions

GAUGE = 20
ROWS = 4  # besides one per socket (or the notice that none listens): waiting, half-open, knocking, drops
MAX_SOCKETS = 8  # sockets drawn one by one; a server with more scrolls its JSON, not this box


def names(connections: Sequence[Connection], client_ids: Mapping[int, int], limit: int = 8) -> str:
    words: list[str] = []
    for conn in connections[:limit]:
        port = port_of(conn.client)
        words.append(f"#{client_ids[port]}" if port is not None and port in client_ids else f":{port}")
    if len(connections) > limit:
        words.append(f"+{len(connections) - limit}")
    return " ".join(words) or "none"


def holder(sock: ListenSocket, several: bool) -> Text:
    """Who takes connections from this socket: the pid holding it, or (reuseport, every
    worker holding every socket) the workers whose epoll watches it."""
    text = Text()
    if sock.pollers:
        text.append(f"  epoll of pid {', '.join(map(str, sock.pollers))}", style="bold")
    elif sock.pid is not None:
        text.append(f"  pid {sock.pid}", style="bold" if several else "dim")
    if len(sock.holders) > 1:
        text.append(f" (held by {len(sock.holders)} processes)", style="dim")
    return text


class ListenPanel(Panel):
    DEFAULT_CSS = """
    ListenPanel {
        height: 7;
    }
    """
    BORDER_TITLE = "listen sockets"

    listen: reactive[tuple[ListenSocket, ...] | None] = reactive(None)  # None until the first sample
    connections: reactive[tuple[Connection, ...]] = reactive(())
    drops = reactive(0)
    client_ids: reactive[dict[int, int]] = reactive({})
    status = reactive("")  # the lab's: a watched server that is gone says so here

    def __init__(self, **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        # ListenDrops counts for the whole machine since boot: shown from the server's start.
        self._drops_at_start: tuple[int | None, int] = (None, 0)

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is None:
            return
        total = update.snapshot.counters.listen_drops
        if self._drops_at_start[0] != update.server_pid:
            self._drops_at_start = (update.server_pid, total)
        # The observer hands back the same connections while they stay as they were:
        # comparing them is cheap, rebuilding the text for a thousand of them is not.
        self.listen, self.connections = update.snapshot.listen, update.snapshot.connections
        # A row per socket: four reuseport sockets make the box taller, not the rows fewer.
        height = 2 + ROWS + min(MAX_SOCKETS, max(1, len(update.snapshot.listen)))
        if self.styles.height is None or self.styles.height.value != height:
            self.styles.height = height
        self.drops = total - self._drops_at_start[1]
        self.client_ids = ids_by_port(update.clients)
        self.status = update.status

    def render(self) -> Text:
        if self.listen is None:
            return Text("")
        lines: list[Text] = []
        if not self.listen:
            # A watched server that is gone says what is true of its port now.
            gone = self.status.startswith("gone")
            lines.append(
                Text(self.status if gone else "no listening socket: connections are refused", style="bold red")
            )
        for sock in self.listen[:MAX_SOCKETS]:
            # The queue holds backlog+1 completed connections.
            capacity = sock.backlog + 1
            filled = min(GAUGE, round(GAUGE * sock.queue / capacity)) if capacity else 0
            line = Text(f"accept queue: {sock.queue}/{sock.backlog}", style="bold")
            line.append("  ")
            line.append("█" * filled, style="red" if sock.queue >= capacity else "yellow")
            line.append("░" * (GAUGE - filled), style="dim")
            line.append(f" fd {sock.fd if sock.fd is not None else '-'}", style="dim")
            line.append_text(holder(sock, len(self.listen) > 1))
            lines.append(line)
        by_state: dict[str, list[Connection]] = {}
        for conn in self.connections:
            by_state.setdefault(conn.state, []).append(conn)
        lines.append(Text(f"waiting in it: {names(by_state.get('queued', []), self.client_ids)}"))
        # The server's half-open rows and deferred accepts are not the client's dropped SYN.
        server_side = Text()
        for state in ("syn_recv", "deferred"):
            waiting = by_state.get(state, [])
            server_side.append(
                f"{CONN_STATE_WORDS[state]}: {names(waiting, self.client_ids)}   ",
                style="bold yellow" if waiting else "",
            )
        lines.append(server_side)
        knocking = by_state.get("syn_sent", [])
        lines.append(
            Text(
                f"{CONN_STATE_WORDS['syn_sent']}: {names(knocking, self.client_ids)}",
                style="bold yellow" if knocking else "",
            )
        )
        drops = Text(f"drops since start: {self.drops}", style="bold red" if self.drops else "dim")
        drops.append("  (ListenDrops: every socket of the machine)", style="dim")
        lines.append(drops)
        return fit(lines, self.content_size.height)
