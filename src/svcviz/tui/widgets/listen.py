"""The listening socket: the accept queue, who waits in it, who knocks at a full one."""

from __future__ import annotations

from rich.text import Text

from svcviz.tui.widgets.text import Panel, fit, port_of

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
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.update_ = None
        self.drops = 0
        self._key = None

    def show(self, update, drops: int) -> None:
        # The observer hands back the same connections while they stay as they were:
        # comparing them is cheap, rebuilding the text for a thousand of them is not.
        key = (
            update.snapshot.listen,
            update.snapshot.connections,
            drops,
            tuple((c.local_port, c.id) for c in update.clients),
        )
        if key == self._key:
            return
        self.update_, self.drops, self._key = update, drops, key
        self.changed()

    def build(self) -> Text:
        u = self.update_
        if u is None:
            return Text("")
        snapshot = u.snapshot
        client_ids = {c.local_port: c.id for c in u.clients if c.local_port}
        lines: list[Text] = []
        if not snapshot.listen:
            # A watched server that is gone says what is true of its port now.
            gone = u.status.startswith("gone")
            lines.append(Text(u.status if gone else "no listening socket: connections are refused", style="bold red"))
        for sock in snapshot.listen:
            # The queue holds backlog+1 completed connections.
            capacity = sock.backlog + 1
            filled = min(GAUGE, round(GAUGE * sock.queue / capacity)) if capacity else 0
            line = Text(f"accept queue: {sock.queue}/{sock.backlog}", style="bold")
            line.append("  ")
            line.append("█" * filled, style="red" if sock.queue >= capacity else "yellow")
            line.append("░" * (GAUGE - filled), style="dim")
            line.append(f" fd {sock.fd if sock.fd is not None else '-'}", style="dim")
            lines.append(line)
        queued = [c for c in snapshot.connections if c.state == "queued"]
        knocking = [c for c in snapshot.connections if c.state in ("syn_sent", "syn_recv")]
        lines.append(Text(f"waiting in it: {names(queued, client_ids)}"))
        lines.append(
            Text(f"knocking (SYN_SENT): {names(knocking, client_ids)}", style="bold yellow" if knocking else "")
        )
        drops = Text(f"drops since start: {self.drops}", style="bold red" if self.drops else "dim")
        drops.append("  (ListenDrops: every socket of the machine)", style="dim")
        lines.append(drops)
        return fit(lines, self.content_size.height)
