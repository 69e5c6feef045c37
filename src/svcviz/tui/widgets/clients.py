"""The simulated clients: state, local port, and who serves each (pid, fd, thread)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import var
from textual.widgets import DataTable, Static

from svcviz.clients.view import HALF_OPEN
from svcviz.observe.snapshot import CONN_STATE_WORDS
from svcviz.plain import plain
from svcviz.tui.widgets.text import Panel

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


def server_side(client, conn) -> Text:
    """The line from a client to the process that owns its connection: the point of the tool."""
    if not client.open or not client.local_port:
        return Text("")
    if client.state == "half-open":
        return Text(HALF_OPEN, style="yellow")
    if conn is None:
        return Text("")
    if conn.state == "queued":
        return Text("in the accept queue", style="yellow")
    if conn.state == "syn_sent":
        return Text("knocking: SYN_SENT", style="yellow")
    if conn.state in ("syn_recv", "deferred"):  # the server's half-open row; a deferred accept
        return Text(CONN_STATE_WORDS[conn.state], style="yellow")
    if conn.pid is None:
        return Text(conn.tcp_state, style="dim")
    text = Text("→ ")
    text.append(f"pid {conn.pid} fd {conn.fd}", style="bold")
    if conn.tid is not None and conn.tid != conn.pid:
        text.append(f" thread {conn.tid}")
    return text


def cells(client, conn) -> tuple[Text, ...]:
    """One client's row: id, state, local port, who serves it, its last reply or error."""
    note = Text()
    if client.last_reply:
        note.append(f"«{plain(client.last_reply)}»", style="dim")  # the server's bytes, whatever they are
    if client.error:
        error = plain(client.error)
        note.append(f"  {error}" if client.last_reply else error, style="red")
    return (
        Text(f"#{client.id}", style="bold"),
        Text(client.state, style=COLOURS.get(client.state, "")),
        Text(f":{client.local_port or '-'}"),
        server_side(client, conn),
        note,
    )


COLUMNS = ("id", "state", "port", "server", "note")


class ClientTable(DataTable):
    """The clients, one row each, newest last. No row is selected until up or down is
    pressed (x then closes the newest); the selection follows its client."""

    DEFAULT_CSS = """
    ClientTable {
        height: 1fr;
        background: transparent;
    }
    """
    # enter types a line into the selected client (the app's key), it does not select a row.
    BINDINGS = [Binding("enter", "app.send_line", show=False)]

    def __init__(self) -> None:
        super().__init__(show_header=False, show_cursor=False, cursor_type="row", cell_padding=1)
        for column in COLUMNS:
            self.add_column(column, key=column)

    @property
    def selected_id(self) -> int | None:
        if not self.show_cursor or not self.row_count:
            return None
        return int(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def action_cursor_up(self) -> None:
        if self.show_cursor or not self.row_count:
            super().action_cursor_up()
        else:
            self.show_cursor = True
            self.move_cursor(row=self.row_count - 1, animate=False)

    def action_cursor_down(self) -> None:
        if self.show_cursor or not self.row_count:
            super().action_cursor_down()
        else:
            self.show_cursor = True
            self.move_cursor(row=0, animate=False)

    def show_rows(self, old: tuple, new: tuple) -> None:
        """From the rows drawn (old) to the rows wanted (new): only what changed is touched,
        so a thousand clients cost a comparison each."""
        selected = self.selected_id
        before = {row[0].id: row for row in old}
        wanted = {client.id for client, _ in new}
        for gone in before.keys() - wanted:
            self.remove_row(str(gone))
        for row in new:
            client = row[0]
            if client.id not in before:
                self.add_row(*cells(*row), key=str(client.id))
            elif before[client.id] != row:
                for column, cell in zip(COLUMNS, cells(*row), strict=True):
                    self.update_cell(str(client.id), column, cell, update_width=True)
        if selected is None or selected not in wanted:
            self.show_cursor = False
            self.scroll_end(animate=False)  # nothing selected: show the newest
        else:
            self.move_cursor(row=self.get_row_index(str(selected)), animate=False)


class ClientsPanel(Panel):
    DEFAULT_CSS = """
    ClientsPanel:focus-within {
        border: round $accent;
    }
    ClientsPanel > Static {
        color: $text-muted;
    }
    """
    BORDER_TITLE = "clients (up/down select)"

    # (client, its connection as the kernel has it): the rows of the table, in order.
    rows = var(())

    def compose(self) -> ComposeResult:
        yield Static(Text("no clients yet: press c", style="dim"))
        yield ClientTable()

    @property
    def selected_id(self) -> int | None:
        return self.query_one(ClientTable).selected_id

    def watch_latest(self, update) -> None:
        if update is not None:
            # Watching a busy server with no clients of ours: skip indexing its connections.
            by_port = {c.client_port: c for c in update.snapshot.connections} if update.clients else {}
            self.rows = tuple((client, by_port.get(client.local_port)) for client in update.clients)

    def watch_rows(self, old: tuple, new: tuple) -> None:
        self.query_one(Static).display = not new
        self.query_one(ClientTable).show_rows(old, new)
