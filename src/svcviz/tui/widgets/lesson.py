"""What the current model demonstrates, from the lecture, and what to try next."""

from __future__ import annotations

from rich.text import Text

from svcviz.servers.registry import BY_NAME
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
        lesson = lesson_for(self.model)
        text = Text()
        known = BY_NAME.get(self.model)
        if known:
            text.append(f"{known.name} ({known.lecture}): ", style="bold")
        text.append(lesson.shows)
        text.append("\ntry next:", style="bold cyan")
        for step in lesson.try_next:
            text.append(f"\n • {step}")
        return text
