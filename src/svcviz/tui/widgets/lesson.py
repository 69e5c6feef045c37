"""What the current model demonstrates, from the lecture, and its steps as a checklist the
kernel ticks (svcviz.scenarios.checklist): ✓ done, → the one to do now.

The box is small: when the whole lesson does not fit, the step to do now and the ones after
it come first, the done ones fold into one line, and `l` shows it all (LessonScreen)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Static

from svcviz.scenarios.checklist import Checklist
from svcviz.servers.registry import model_of
from svcviz.tui.lessons import lesson_for
from svcviz.tui.widgets.text import Panel

if TYPE_CHECKING:
    from typing import Unpack

    from svcviz.lab import LabUpdate
    from svcviz.tui.widgets.text import WidgetOptions

DONE, NOW, LATER = "✓", "→", "·"


def heading(model_name: str) -> Text:
    known = model_of(model_name)
    lesson = lesson_for(known)
    text = Text()
    if known:
        text.append(f"{known.name} ({known.lecture}): ", style="bold")
    text.append(lesson.shows)
    return text


def step_lines(checklist: Checklist) -> list[Text]:
    lines = []
    for number, step in enumerate(checklist.lesson.try_next):
        done = number < checklist.done
        mark = DONE if done else NOW if number == checklist.done else LATER
        line = Text(f"{mark} ", style="bold green" if done else "bold cyan" if mark == NOW else "dim")
        line.append(step.text, style="dim" if done else "bold" if mark == NOW else "")
        lines.append(line)
    return lines


def whole(model_name: str, checklist: Checklist) -> Text:
    text = heading(model_name)
    text.append("\n\ntry next:", style="bold cyan")
    for line in step_lines(checklist):
        text.append("\n")
        text.append_text(line)
    return text


class LessonPanel(Panel):
    DEFAULT_CSS = """
    LessonPanel {
        border: round $secondary;
        text-wrap: wrap;
        text-overflow: fold;
    }
    """
    BORDER_TITLE = "lesson (l: all of it)"

    model = reactive("")
    done = reactive(0)  # steps ticked: a repaint when one ticks

    def __init__(self, **kwargs: Unpack[WidgetOptions]) -> None:
        super().__init__(**kwargs)
        self.checklist: Checklist | None = None
        self._clients = 0

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is None:
            return
        # A new lesson: another model, or the same one started over (its clients are gone).
        fresh = update.config.model != self.model or (self._clients and not update.clients)
        self._clients = len(update.clients)
        if fresh or self.checklist is None:
            self.checklist = Checklist(lesson_for(model_of(update.config.model)))
            self.done = 0
            self.model = update.config.model
        if self.checklist.check(update) or fresh:
            self.done = self.checklist.done
        subtitle = f"{update.config.model}: {self.done}/{len(self.checklist.lesson.try_next)} done"
        if subtitle != self.border_subtitle:  # setting it repaints the panel, even to the same text
            self.border_subtitle = subtitle

    def render(self) -> Text:
        if not self.model or self.checklist is None:
            return Text("")
        width, height = self.content_size.width, self.content_size.height
        full = whole(self.model, self.checklist)
        if height <= 0 or width <= 0 or self._rows(full, width) <= height:
            return full
        # Too small: the steps to do come first; the heading and the done steps give way.
        steps = step_lines(self.checklist)
        todo, done = steps[self.checklist.done :], steps[: self.checklist.done]
        lines: list[Text] = []
        room = height
        for line in todo:
            rows = self._rows(line, width)
            if rows > room:
                break
            lines.append(line)
            room -= rows
        if done and room >= 1:
            lines.insert(0, Text(f"{DONE} {len(done)} done (l: the lesson)", style="green"))
        elif len(lines) < len(todo) and lines:
            lines[-1] = Text(f"… {len(todo) - len(lines) + 1} more steps (l)", style="dim")
        return Text("\n").join(lines) if lines else Text("l: the lesson", style="dim")

    def full_screen(self) -> LessonScreen:
        return LessonScreen(whole(self.model, self.checklist) if self.checklist else Text("no lesson yet"))

    def _rows(self, text: Text, width: int) -> int:
        return len(text.wrap(self.app.console, width))


class LessonScreen(ModalScreen[None]):
    """`l`: the whole lesson, scrollable, with its ticks as they are now."""

    BINDINGS = [Binding("escape,q,l", "dismiss", "Close the lesson")]
    DEFAULT_CSS = """
    LessonScreen {
        align: center middle;
    }
    #lesson-box {
        width: 90%;
        max-width: 100;
        height: 90%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        self.text.append("\n\nescape, q or l closes this.", style="dim")
        with VerticalScroll(id="lesson-box"):
            yield Static(self.text)
