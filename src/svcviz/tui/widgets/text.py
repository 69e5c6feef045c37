"""Helpers shared by the panels: fitting lines into a box."""

from __future__ import annotations

from rich.text import Text


def fit(lines: list[Text], height: int, more: str = "more") -> Text:
    """The lines that fit in height rows, the last one saying how many did not."""
    if height > 0 and len(lines) > height:
        hidden = len(lines) - height + 1
        lines = lines[:height - 1] + [Text(f"… {hidden} {more}", style="dim")]
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
