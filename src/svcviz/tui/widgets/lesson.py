"""What the current model demonstrates, from the lecture, and what to try next."""

from __future__ import annotations

from rich.text import Text

from svcviz.servers.registry import model_of
from svcviz.tui.lessons import lesson_for
from svcviz.tui.widgets.text import Panel


class LessonPanel(Panel):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model: str | None = None

    def show(self, model: str) -> None:
        if model != self.model:
            self.model = model
            self.changed()

    def build(self) -> Text:
        if self.model is None:
            return Text("")
        known = model_of(self.model)
        lesson = lesson_for(known)
        text = Text()
        if known:
            text.append(f"{known.name} ({known.lecture}): ", style="bold")
        text.append(lesson.shows)
        text.append("\ntry next:", style="bold cyan")
        for step in lesson.try_next:
            text.append(f"\n • {step}")
        return text
