"""`enter`: type a line into the selected client, as into its telnet."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class SendLine(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, client_id: int) -> None:
        super().__init__()
        self.client_id = client_id

    def compose(self) -> ComposeResult:
        with Vertical(id="send-box"):
            yield Static(f"Line for client #{self.client_id} (a service name, e.g. discard; escape cancels)")
            yield Input(placeholder="discard", id="send-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)
