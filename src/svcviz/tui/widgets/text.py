"""What the panels share: a base that repaints only on change, and fitting rows into a box."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


def fit(lines: list[Text], height: int, more: str = "more") -> Text:
    """The lines that fit in height rows, the last one saying how many did not."""
    if height > 0 and len(lines) > height:
        hidden = len(lines) - height + 1
        lines = [*lines[: height - 1], Text(f"… {hidden} {more}", style="dim")]
    return one_per_row(lines)


def one_per_row(lines: list[Text]) -> Text:
    """Lines joined without wrapping: a long one is cut with an ellipsis, so the counts
    that fit() made stay true."""
    text = Text("\n", no_wrap=True, overflow="ellipsis").join(lines)
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


def port_of(address: str | None) -> int | None:
    if not address:
        return None
    try:
        return int(address.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


class Panel(Widget):
    """A panel that repaints only when what it shows changed.

    The lab posts ten updates a second and most leave a panel as it was; building the text
    is cheap, painting it is not (a 200-process tree is most of a frame)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._text: Text | None = None
        self._built_for: tuple[int, int] = (0, 0)

    def build(self) -> Text:
        raise NotImplementedError

    def changed(self) -> None:
        text = self.build()
        if text != self._text or self._built_for != tuple(self.content_size):
            self._text, self._built_for = text, tuple(self.content_size)
            self.refresh()

    def render(self) -> Text:
        if self._text is None or self._built_for != tuple(self.content_size):
            self._text, self._built_for = self.build(), tuple(self.content_size)
        return self._text
