"""`?`: every key with what it does, read off the app's own bindings so it stays true."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {"question_mark": "?", "plus": "+", "minus": "-", "vertical_line": "|"}


def key_name(key: str) -> str:
    return KEY_NAMES.get(key, key)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close help")]

    def __init__(self, bindings: list[Binding], watching: bool) -> None:
        super().__init__()
        self.bindings_ = bindings
        self.watching = watching

    def compose(self) -> ComposeResult:
        text = Text("svcviz keys\n\n", style="bold")
        for binding in self.bindings_:
            keys = ", ".join(key_name(k) for k in binding.key.split(","))
            text.append(f"{keys:>12}  ", style="bold cyan")
            text.append(f"{binding.description}\n")
        text.append("\n      up/down  select a client (x and enter act on it)\n")
        if self.watching:
            text.append("\nwatch mode: the server is not svcviz's, so model keys are off.\n", style="yellow")
        text.append("\nescape, q or ? closes this help.", style="dim")
        with VerticalScroll(id="help-box"):
            yield Static(text)
