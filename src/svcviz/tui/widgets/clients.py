"""The simulated clients: state, local port, and who serves each (pid, fd, thread)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from svcviz.clients.view import HALF_OPEN
from svcviz.plain import plain
from svcviz.tui.widgets.text import Panel, fit

COLOURS = {
    "connecting": "cyan",
    "waiting": "yellow",
    "served": "green",
    "idle": "green",
    "refused": "red",
    "timed_out": "red",
    "closed": "dim",
    "hung": "bold magenta",
    "reset": "red",
    "error": "bold red",
    "quit": "dim",
    "half-open": "bold yellow",
}


def server_side(client, by_port: dict) -> Text:
    """The line from a client to the process that owns its connection: the point of the tool."""
    if not client.open or not client.local_port:
        return Text("")
    if client.state == "half-open":
        return Text(HALF_OPEN, style="yellow")
    conn = by_port.get(client.local_port)
    if conn is None:
        return Text("")
    if conn.state == "queued":
        return Text("in the accept queue", style="yellow")
    if conn.state in ("syn_sent", "syn_recv"):
        return Text("knocking: SYN_SENT", style="yellow")
    if conn.pid is None:
        return Text(conn.tcp_state, style="dim")
    text = Text("→ ")
    text.append(f"pid {conn.pid} fd {conn.fd}", style="bold")
    if conn.tid is not None and conn.tid != conn.pid:
        text.append(f" thread {conn.tid}")
    return text


class ClientsPanel(Panel, can_focus=True):
    BINDINGS = [
        Binding("up", "select(-1)", "Previous client", show=False),
        Binding("down", "select(1)", "Next client", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.update_ = None
        self.selected_id: int | None = None

    def show(self, update) -> None:
        self.update_ = update
        if self.selected_id is not None and all(c.id != self.selected_id for c in update.clients):
            self.selected_id = None
        self.changed()

    def action_select(self, step: int) -> None:
        ids = [c.id for c in self.update_.clients] if self.update_ else []
        if not ids:
            return
        if self.selected_id not in ids:
            self.selected_id = ids[0] if step > 0 else ids[-1]
        else:
            self.selected_id = ids[max(0, min(len(ids) - 1, ids.index(self.selected_id) + step))]
        self.changed()

    def build(self) -> Text:
        u = self.update_
        if u is None or not u.clients:
            return Text("no clients yet: press c", style="dim")
        clients = list(u.clients)
        height = self.content_size.height
        # Keep the selection in view; otherwise show the newest.
        index = next((i for i, c in enumerate(clients) if c.id == self.selected_id), len(clients) - 1)
        start = max(0, min(index - height // 2, len(clients) - height)) if height else 0
        shown = clients[start : start + height] if height else clients
        by_port = {c.client_port: c for c in u.snapshot.connections}
        lines = []
        for client in shown:
            line = Text(f"#{client.id:<4}", style="bold reverse" if client.id == self.selected_id else "bold")
            line.append(f" {client.state:<10}", style=COLOURS.get(client.state, ""))
            line.append(f" :{client.local_port or '-':<6}")
            line.append_text(server_side(client, by_port))
            if client.last_reply:
                line.append(f"  «{plain(client.last_reply)}»", style="dim")  # the server's bytes, whatever they are
            if client.error:
                line.append(f"  {plain(client.error)}", style="red")
            lines.append(line)
        if start:
            lines[0] = Text(f"… {start} above", style="dim")
        return fit(lines, height, "below")
