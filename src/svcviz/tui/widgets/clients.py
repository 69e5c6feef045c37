"""The simulated clients: state, local port, and who serves each (pid, fd, thread)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import DataTable, Static

from svcviz.clients.colours import STATE_COLOURS
from svcviz.clients.view import HALF_OPEN, ClientView
from svcviz.observe.snapshot import CONN_STATE_WORDS, Connection
from svcviz.plain import plain
from svcviz.tui.widgets.text import Panel

if TYPE_CHECKING:
    from svcviz.lab import LabUpdate

# A row of the table: a client, and its connection as the kernel has it (None: none seen).
Row = tuple[ClientView, Connection | None]

EMPHASIS = frozenset({"hung", "error", "half-open"})  # states a student must not miss: bold in the table


def state_style(state: str) -> str:
    """The picture's colour of the state, as text: its grey dim, the states to notice bold."""
    colour = STATE_COLOURS.get(state, "")
    return "dim" if colour == "grey50" else f"bold {colour}" if state in EMPHASIS else colour


def server_side(client: ClientView, conn: Connection | None) -> Text:
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


def cells(client: ClientView, conn: Connection | None) -> tuple[Text, ...]:
    """One client's row: id, state, local port, who serves it, its last reply or error."""
    note = Text()
    if client.last_reply:
        note.append(f"«{plain(client.last_reply)}»", style="dim")  # the server's bytes, whatever they are
    if client.kind == "half-close" and client.open and client.answered:
        note.append("  sent, shut down writing: waiting for EOF", style="yellow")
    if client.error:
        error = plain(client.error)
        note.append(f"  {error}" if client.last_reply else error, style="red")
    return (
        Text(f"#{client.id}", style="bold"),
        Text(client.state, style=state_style(client.state)),
        Text(f":{client.local_port or '-'}"),
        server_side(client, conn),
        note,
    )


COLUMNS = ("id", "state", "port", "server", "note")


class ClientTable(DataTable[Text]):
    """The clients, one row each, newest last.

    The selection follows the newest open client (x closes it) until the user chooses one
    with up/down/home; a chosen client that ends, or leaves the list, hands the selection
    back to the newest open one; end goes back to following it."""

    DEFAULT_CSS = """
    ClientTable {
        height: 1fr;
        background: transparent;
    }
    """
    # enter types a line into the selected client (the app's key), it does not select a row.
    BINDINGS = [
        Binding("enter", "app.send_line", show=False),
        Binding("home", "first", "First client", show=False),
        Binding("end", "newest", "Newest open client", show=False),
    ]

    chosen: int | None = None  # the user's choice; None: the newest open client

    def __init__(self) -> None:
        super().__init__(show_header=False, show_cursor=False, cursor_type="row", cell_padding=1)
        for column in COLUMNS:
            self.add_column(column, key=column)
        self._open: list[int] = []  # ids of the open clients, in order

    @property
    def selected_id(self) -> int | None:
        return self.chosen if self.chosen is not None else (self._open[-1] if self._open else None)

    def _choose_row(self, row: int) -> None:
        if self.row_count:
            row = max(0, min(row, self.row_count - 1))
            key = self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
            assert key is not None  # show_rows keys each row by its client's id
            self.chosen = int(key)
            self._point()

    def _row_of_selection(self) -> int | None:
        selected = self.selected_id
        return None if selected is None else self.get_row_index(str(selected))

    def action_cursor_up(self) -> None:
        row = self._row_of_selection()
        self._choose_row(self.row_count - 1 if row is None else row - 1)

    def action_cursor_down(self) -> None:
        row = self._row_of_selection()
        self._choose_row(0 if row is None else row + 1)

    def action_first(self) -> None:
        self._choose_row(0)

    def action_newest(self) -> None:
        self.chosen = None
        self._point()

    def _point(self) -> None:
        row = self._row_of_selection()
        if row is None:
            self.show_cursor = False
            self.scroll_end(animate=False)  # nothing to select: show the newest
        else:
            self.show_cursor = True
            self.move_cursor(row=row, animate=False)
        self.call_after_refresh(self._tell_hidden)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._tell_hidden()

    def _tell_hidden(self) -> None:
        """`… N above · M below` under the panel: how many rows the box does not show."""
        above = round(self.scroll_y)
        below = max(0, self.row_count - above - self.scrollable_content_region.height)
        parts = [f"… {count} {where}" for count, where in ((above, "above"), (below, "below")) if count]
        if isinstance(self.parent, Widget):  # the clients panel
            self.parent.border_subtitle = " · ".join(parts)

    def show_rows(self, old: tuple[Row, ...], new: tuple[Row, ...]) -> None:
        """From the rows drawn (old) to the rows wanted (new): only what changed is touched,
        so a thousand clients cost a comparison each."""
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
        was_open = self.chosen in self._open
        self._open = [client.id for client, _ in new if client.open]
        if self.chosen is not None and (self.chosen not in wanted or (was_open and self.chosen not in self._open)):
            self.chosen = None  # the chosen client ended or left: the newest open one is selected
        self._point()


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

    rows: var[tuple[Row, ...]] = var(())  # the rows of the table, in order

    def compose(self) -> ComposeResult:
        yield Static(Text("no clients yet: press c", style="dim"))
        yield ClientTable()

    @property
    def selected_id(self) -> int | None:
        return self.query_one(ClientTable).selected_id

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is not None:
            # Watching a busy server with no clients of ours: skip indexing its connections.
            # Keyed by int | None: a client not connected yet has no port, and finds none.
            by_port: dict[int | None, Connection] = (
                {c.client_port: c for c in update.snapshot.connections} if update.clients else {}
            )
            self.rows = tuple((client, by_port.get(client.local_port)) for client in update.clients)

    def watch_rows(self, old: tuple[Row, ...], new: tuple[Row, ...]) -> None:
        self.query_one(Static).display = not new
        self.query_one(ClientTable).show_rows(old, new)
