"""Paint a Picture onto a grid of cells: box-drawing characters and rich styles.

Lines first (each cell remembers which ways a line leaves it, so crossings and branches
get the right character), then the boxes over them. The result is rich Text rows built
from plain strings and styles: a client's text is never read as markup.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterator

from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from svcviz.clients.colours import STATE_COLOURS
from svcviz.picture.layout import CLIENT_W, LISTEN_W, Picture

# The clients panel's colours (tui/widgets/clients.py COLOURS), as a line and as a chip.
BOX_COLOURS = {"zombie": "grey50"}  # a live process whatever its R/S flicker: LIVE_BOX
LIVE_BOX = "cornflower_blue"
UP, DOWN, LEFT, RIGHT = 1, 2, 4, 8
GLYPHS = {
    LEFT | RIGHT: "─",
    UP | DOWN: "│",
    RIGHT | DOWN: "┌",
    LEFT | DOWN: "┐",
    RIGHT | UP: "└",
    LEFT | UP: "┘",
    UP | DOWN | RIGHT: "├",
    UP | DOWN | LEFT: "┤",
    LEFT | RIGHT | DOWN: "┬",
    LEFT | RIGHT | UP: "┴",
    UP | DOWN | LEFT | RIGHT: "┼",
    LEFT: "╴",
    RIGHT: "╶",
    UP: "╵",
    DOWN: "╷",
}
WAYS = {glyph: bits for bits, glyph in GLYPHS.items()} | {
    "┌": RIGHT | DOWN,
    "┐": LEFT | DOWN,
    "└": RIGHT | UP,
    "┘": LEFT | UP,
}
_styles: dict[str, Style] = {}


def style(text: str) -> Style:
    found = _styles.get(text)
    if found is None:
        found = _styles[text] = Style.parse(text) if text else Style()
    return found


def chip_style(state: str) -> str:
    colour = STATE_COLOURS.get(state, "grey50")
    return f"bold black on {colour}" if colour in ("yellow", "green", "cyan") else f"bold white on {colour}"


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.chars = [[" "] * width for _ in range(height)]
        self.styles = [[""] * width for _ in range(height)]
        self.ways = [[0] * width for _ in range(height)]

    def put(self, x: int, y: int, text: str, style_: str = "") -> None:
        if not 0 <= y < self.height:
            return
        row, styles = self.chars[y], self.styles[y]
        for i, char in enumerate(text):
            if 0 <= x + i < self.width:
                row[x + i] = char
                styles[x + i] = style_

    def way(self, x: int, y: int, bits: int, style_: str) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.ways[y][x] |= bits
            self.chars[y][x] = GLYPHS[self.ways[y][x]]
            self.styles[y][x] = style_

    def line(self, points: tuple[tuple[int, int], ...], style_: str) -> None:
        """An orthogonal polyline; its ends reach out of the cells they start and stop in."""
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            if y0 == y1:
                lo, hi = sorted((x0, x1))
                for x in range(lo, hi + 1):
                    self.way(x, y0, (LEFT if x > lo else 0) | (RIGHT if x < hi else 0), style_)
            else:
                lo, hi = sorted((y0, y1))
                for y in range(lo, hi + 1):
                    self.way(x0, y, (UP if y > lo else 0) | (DOWN if y < hi else 0), style_)
        (x0, y0), (x1, y1) = points[0], points[-1]
        self.way(x0, y0, LEFT, style_)
        self.way(x1, y1, RIGHT, style_)

    def box(self, x: int, y: int, w: int, h: int, style_: str, title: str = "", title_style: str = "") -> None:
        self.put(x, y, "┌" + "─" * (w - 2) + "┐", style_)
        for row in range(y + 1, y + h - 1):
            self.put(x, row, "│" + " " * (w - 2) + "│", style_)
        self.put(x, y + h - 1, "└" + "─" * (w - 2) + "┘", style_)
        if title:
            self.put(x + 1, y, f" {title[: w - 4]} ", title_style or style_)

    def runs(self) -> Iterator[list[tuple[str, str]]]:
        """Per row, (text, style) runs of cells of one style."""
        for chars, styles in zip(self.chars, self.styles, strict=True):
            row: list[tuple[str, str]] = []
            start = 0
            for i in range(1, self.width + 1):
                if i == self.width or styles[i] != styles[start]:
                    row.append(("".join(chars[start:i]), styles[start]))
                    start = i
            yield row

    def segments(self) -> list[list[Segment]]:
        """Per row, what a Textual Strip is made of: no Text to wrap, no markup to read."""
        return [[Segment(text, style(st)) for text, st in row] for row in self.runs()]

    def rows(self) -> list[Text]:
        lines: list[Text] = []
        for row in self.runs():
            text = Text(no_wrap=True, overflow="crop")
            for chunk, st in row:
                text.append(chunk, style(st))
            lines.append(text)
        return lines


def draw(picture: Picture, fresh: frozenset[str] = frozenset()) -> list[Text]:
    """The picture's rows; the keys in fresh (new or moved since a moment ago) stand out."""
    return paint(picture, fresh).rows()


def paint(picture: Picture, fresh: frozenset[str] = frozenset()) -> Canvas:
    canvas = Canvas(picture.width, picture.height)
    if picture.off:
        for y, line in enumerate(textwrap.wrap(picture.off, max(1, picture.width))):
            canvas.put(0, y, line, "bold")
        return canvas
    for x, title in picture.titles:
        canvas.put(x, 0, title, "bold underline")
    for wire in picture.wires:
        colour = STATE_COLOURS.get(wire.state, "grey50")
        canvas.line(wire.points, f"bold {colour}" if wire.src in fresh else colour)
    for box in picture.listens:
        border = "bold red" if box.full else "cyan"
        canvas.box(box.x, box.y, LISTEN_W, box.h, border, box.title, "bold cyan")
        canvas.put(box.x + 2, box.y + box.h - 1, f" queue {box.queued}/{box.capacity} ", border)
        for slot in box.slots:
            canvas.put(box.x + 1, slot.y, slot.label[: LISTEN_W - 2], "yellow" if slot.holder else "grey50")
    for proc in picture.boxes:
        colour = "yellow" if proc.adopted else BOX_COLOURS.get(proc.state, LIVE_BOX)
        emphasis = "reverse " if proc.key in fresh else ""
        canvas.box(proc.x, proc.y, proc.w, proc.h, colour, proc.title, f"{emphasis}bold {colour}")
        for row in proc.rows:
            tone = {"listen": "cyan", "conn": "green", "closing": "yellow"}.get(row.kind, "grey50")
            canvas.put(proc.x + 2, row.y, row.text[: proc.w - 3], tone)
    for chip in picture.chips:
        label = f" {chip.label}"[: CLIENT_W - 1].ljust(CLIENT_W - 1)
        canvas.put(0, chip.y, label, ("reverse " if chip.key in fresh else "") + chip_style(chip.state))
    for x, y, text in picture.notes:
        canvas.put(x, y, text, "bold red" if "listening" in text or "refused" in text else "grey50")
    _joins(canvas, picture)
    return canvas


def _joins(canvas: Canvas, picture: Picture) -> None:
    """Where a line meets a box's border, the border branches (┤, ├) so the line visibly
    enters the box."""
    starts = {w.points[0] for w in picture.wires if w.kind == "listen"}
    ends = {w.end for w in picture.wires if w.kind != "knock"}
    for x, y in ends:
        if 0 <= x + 1 < canvas.width and 0 <= y < canvas.height and canvas.chars[y][x + 1] == "│":
            canvas.chars[y][x + 1] = "┤"
    for x, y in starts:
        if 0 <= x - 1 < canvas.width and canvas.chars[y][x - 1] == "│":
            canvas.chars[y][x - 1] = "├"
    for wire in picture.wires:
        if wire.kind == "knock":
            x, y = wire.end
            canvas.put(x + 1, y, "✕" if _full(picture, wire.dst) else "▸", "bold red")


def _full(picture: Picture, key: str) -> bool:
    return any(box.full for box in picture.listens if box.key == key)
