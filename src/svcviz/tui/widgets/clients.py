"""The simulated clients: state, local port, and who serves each (pid, fd, thread)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive

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
}


def server_side(client, by_port: dict) -> Text:
    """The line from a client to the process that owns its connection: the point of the tool."""
    if not client.open or not client.local_port:
        return Text("")
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
    DEFAULT_CSS = """
    ClientsPanel:focus {
        border: round $accent;
    }
    """
    BORDER_TITLE = "clients (up/down select)"
    BINDINGS = [
        Binding("up", "select(-1)", "Previous client", show=False),
        Binding("down", "select(1)", "Next client", show=False),
    ]

    clients = reactive(None)  # None until the first sample
    connections = reactive(())
    selected_id: reactive[int | None] = reactive(None)

    def watch_latest(self, update) -> None:
        if update is None:
            return
        self.clients, self.connections = update.clients, update.snapshot.connections
        if self.selected_id is not None and all(c.id != self.selected_id for c in update.clients):
            self.selected_id = None

    def action_select(self, step: int) -> None:
        ids = [c.id for c in self.clients or ()]
        if not ids:
            return
        if self.selected_id not in ids:
            self.selected_id = ids[0] if step > 0 else ids[-1]
        else:
            self.selected_id = ids[max(0, min(len(ids) - 1, ids.index(self.selected_id) + step))]

    def render(self) -> Text:
        if not self.clients:
            return Text("no clients yet: press c", style="dim")
        clients = self.clients
        height = self.content_size.height
        # Keep the selection in view; otherwise show the newest.
        index = next((i for i, c in enumerate(clients) if c.id == self.selected_id), len(clients) - 1)
        start = max(0, min(index - height // 2, len(clients) - height)) if height else 0
        shown = clients[start : start + height] if height else clients
        by_port = {c.client_port: c for c in self.connections}
        lines = []
        for client in shown:
            line = Text(f"#{client.id:<4}", style="bold reverse" if client.id == self.selected_id else "bold")
            line.append(f" {client.state:<10}", style=COLOURS.get(client.state, ""))
            line.append(f" :{client.local_port or '-':<6}")
            line.append_text(server_side(client, by_port))
            if client.last_reply:
                line.append(f"  «{client.last_reply}»", style="dim")
            if client.error:
                line.append(f"  {client.error}", style="red")
            lines.append(line)
        if start:
            lines[0] = Text(f"… {start} above", style="dim")
        return fit(lines, height, "below")
