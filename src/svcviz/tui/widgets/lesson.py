"""What the current model demonstrates, from the lecture, and what to try next."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from svcviz.servers.registry import model_of
from svcviz.tui.lessons import lesson_for
from svcviz.tui.widgets.text import Panel


class LessonPanel(Panel):
    DEFAULT_CSS = """
    LessonPanel {
        border: round $secondary;
        text-wrap: wrap;
        text-overflow: fold;
    }
    """
    BORDER_TITLE = "lesson"

    model = reactive("")

    def watch_latest(self, update) -> None:
        if update is not None:
            self.model = update.config.model

    def render(self) -> Text:
        if not self.model:
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
