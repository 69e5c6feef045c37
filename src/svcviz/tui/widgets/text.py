"""What the panels share: a bordered base fed by the app's newest update, and fitting rows into a box."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict

from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.reactive import var
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    from svcviz.clients import ClientView
    from svcviz.lab import LabUpdate


class WidgetOptions(TypedDict, total=False):
    """The keywords every Textual widget takes, which a panel passes on to Widget's
    __init__ as they came (`**options: Unpack[WidgetOptions]`)."""

    name: str | None
    id: str | None
    classes: str | None
    disabled: bool


def row_strip(line: Text, width: int, base: Style, console: Console) -> Strip:
    """One row of a line-API panel: the text cut to the width with an ellipsis, the panel's
    colours under the row's own styles, padded to the width. Rendered as segments:
    console.render_lines' wrapping machinery cost ~5 ms a row."""
    line.truncate(width, overflow="ellipsis")
    return Strip(line.render(console)).apply_style(base).extend_cell_length(width, base)


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


def ids_by_port(clients: Iterable[ClientView]) -> dict[int, int]:
    """Local port -> client id: how a panel names the connection of one of our clients."""
    return {c.local_port: c.id for c in clients if c.local_port}


class Panel(Widget):
    """A bordered panel drawn from the app's newest LabUpdate (bound as `latest`).

    The lab posts ten updates a second and most leave a panel as it was. So `latest` itself
    repaints nothing: each panel's watch_latest copies the parts it draws into reactive
    attributes, and Textual repaints only when one of them differs. The observer reuses
    unchanged objects, so most of those comparisons are identity checks."""

    # Panels count the rows they fill: a long line is cut, never wrapped onto the next.
    DEFAULT_CSS = """
    Panel {
        border: round $primary;
        border-title-color: $accent;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    latest: var[LabUpdate | None] = var(None)
