"""`m`: pick a model, each with its lecture program and the one idea it shows."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from svcviz.servers.registry import MODELS


class ModelPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        options = []
        for model in MODELS:
            prompt = Text(f"{model.key} {model.name}", style="bold")
            prompt.append(f"  {model.lecture}", style="cyan")
            if model.name == self.current:
                prompt.append("  (running)", style="green")
            prompt.append(f"\n   {model.idea}", style="dim")
            options.append(Option(prompt, id=model.name))
        with Vertical(id="picker-box"):
            yield Static("Pick a server model (enter starts it, escape cancels)", id="picker-title")
            yield OptionList(*options, id="picker")

    def on_mount(self) -> None:
        picker = self.query_one(OptionList)
        picker.highlighted = (
            next(i for i, m in enumerate(MODELS) if m.name == self.current)
            if any(m.name == self.current for m in MODELS)
            else 0
        )
        picker.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
