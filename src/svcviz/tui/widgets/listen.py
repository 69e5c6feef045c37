"""The listening socket: the accept queue, who waits in it, who knocks at a full one."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from svcviz.tui.widgets.text import Panel, fit, ids_by_port, port_of

GAUGE = 20


def names(connections, client_ids: dict[int, int], limit: int = 8) -> str:
    words = []
    for conn in connections[:limit]:
        port = port_of(conn.client)
        words.append(f"#{client_ids[port]}" if port in client_ids else f":{port}")
    if len(connections) > limit:
        words.append(f"+{len(connections) - limit}")
    return " ".join(words) or "none"


class ListenPanel(Panel):
    DEFAULT_CSS = """
    ListenPanel {
        height: 7;
    }
    """
    BORDER_TITLE = "listen socket"

    listen = reactive(None)  # None until the first sample
    connections = reactive(())
    drops = reactive(0)
    client_ids = reactive({})
    status = reactive("")  # the lab's: a watched server that is gone says so here

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # ListenDrops counts for the whole machine since boot: shown from the server's start.
        self._drops_at_start: tuple[int | None, int] = (None, 0)

    def watch_latest(self, update) -> None:
        if update is None:
            return
        total = update.snapshot.counters.listen_drops
        if self._drops_at_start[0] != update.server_pid:
            self._drops_at_start = (update.server_pid, total)
        # The observer hands back the same connections while they stay as they were:
        # comparing them is cheap, rebuilding the text for a thousand of them is not.
        self.listen, self.connections = update.snapshot.listen, update.snapshot.connections
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
        for sock in self.listen:
            # The queue holds backlog+1 completed connections.
            capacity = sock.backlog + 1
            filled = min(GAUGE, round(GAUGE * sock.queue / capacity)) if capacity else 0
            line = Text(f"accept queue: {sock.queue}/{sock.backlog}", style="bold")
            line.append("  ")
            line.append("█" * filled, style="red" if sock.queue >= capacity else "yellow")
            line.append("░" * (GAUGE - filled), style="dim")
            line.append(f" fd {sock.fd if sock.fd is not None else '-'}", style="dim")
            lines.append(line)
        queued = [c for c in self.connections if c.state == "queued"]
        knocking = [c for c in self.connections if c.state in ("syn_sent", "syn_recv")]
        lines.append(Text(f"waiting in it: {names(queued, self.client_ids)}"))
        lines.append(
            Text(f"knocking (SYN_SENT): {names(knocking, self.client_ids)}", style="bold yellow" if knocking else "")
        )
        drops = Text(f"drops since start: {self.drops}", style="bold red" if self.drops else "dim")
        drops.append("  (ListenDrops: every socket of the machine)", style="dim")
        lines.append(drops)
        return fit(lines, self.content_size.height)
