"""A Picture as SVG, for handouts: the cells draw.py paints, with the box-drawing
characters as vector strokes (they join in any viewer and at any zoom, where a font's
glyphs leave gaps), the text as text, the chips as filled boxes."""

from __future__ import annotations

from html import escape as _html_escape

from rich.color import Color
from rich.terminal_theme import MONOKAI

from svcviz.picture.draw import DOWN, LEFT, RIGHT, UP, WAYS, paint, style
from svcviz.picture.layout import Picture

CELL_W, CELL_H, FONT = 8.4, 18.0, 14
BACKGROUND, FOREGROUND = "#1e1e1e", "#d4d4d4"
FONTS = "DejaVu Sans Mono, Menlo, Consolas, monospace"


def escape(text: str) -> str:
    """&, < and > as entities (xml.sax.saxutils' escape: importing it loads urllib, http
    and email, a twentieth of the dashboard's start, for three replacements)."""
    return _html_escape(text, quote=False)


def _hex(color: Color | None, default: str) -> str:
    if color is None or color.is_default:
        return default
    return color.get_truecolor(MONOKAI).hex


def picture_to_svg(picture: Picture, title: str = "svcviz") -> str:
    canvas = paint(picture)
    width, height = picture.width * CELL_W + 20, (picture.height + 2) * CELL_H + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONTS}" font-size="{FONT}">',
        f"<title>{escape(title)}</title>",
        f'<rect width="100%" height="100%" rx="8" fill="{BACKGROUND}"/>',
        f'<text x="{width / 2:.1f}" y="{CELL_H:.1f}" fill="{FOREGROUND}" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>',
        f'<g transform="translate(10 {CELL_H * 1.5:.1f})" stroke-linecap="square">',
    ]
    for y in range(canvas.height):
        chars, styles = canvas.chars[y], canvas.styles[y]
        x = 0
        while x < canvas.width:
            start, st = x, styles[x]
            while x < canvas.width and styles[x] == st:
                x += 1
            out.extend(_run(start, y, chars[start:x], st))
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def _run(x0: int, y: int, chars: list[str], style_text: str) -> list[str]:
    """One run of cells of one style: its background, its strokes, its words."""
    st = style(style_text)
    fg = _hex(st.color, FOREGROUND)
    bg = _hex(st.bgcolor, "")
    if st.reverse:
        fg, bg = bg or BACKGROUND, fg
    parts = []
    top = y * CELL_H
    if bg:
        parts.append(
            f'<rect x="{x0 * CELL_W:.1f}" y="{top:.1f}" width="{len(chars) * CELL_W:.1f}" '
            f'height="{CELL_H:.1f}" fill="{bg}"/>'
        )
    strokes = []
    for i, char in enumerate(chars):
        bits = WAYS.get(char)
        if bits is None:
            continue
        cx, cy = (x0 + i + 0.5) * CELL_W, top + CELL_H / 2
        for way, (dx, dy) in (
            (UP, (0, -CELL_H / 2)),
            (DOWN, (0, CELL_H / 2)),
            (LEFT, (-CELL_W / 2, 0)),
            (RIGHT, (CELL_W / 2, 0)),
        ):
            if bits & way:
                strokes.append(f"M{cx:.1f} {cy:.1f}l{dx:.1f} {dy:.1f}")
    if strokes:
        width = 2 if st.bold else 1.2
        parts.append(f'<path d="{"".join(strokes)}" stroke="{fg}" stroke-width="{width}" fill="none"/>')
    i = 0
    while i < len(chars):  # words: runs of text that are neither spaces nor strokes
        if chars[i] == " " or chars[i] in WAYS:
            i += 1
            continue
        j = i
        while j < len(chars) and not (
            chars[j] in WAYS or (chars[j] == " " and (j + 1 >= len(chars) or chars[j + 1] == " "))
        ):
            j += 1
        word = "".join(chars[i:j])
        weight = ' font-weight="bold"' if st.bold else ""
        deco = ' text-decoration="underline"' if st.underline else ""
        parts.append(
            f'<text x="{(x0 + i) * CELL_W:.1f}" y="{top + CELL_H * 0.75:.1f}" fill="{fg}" '
            f'textLength="{len(word) * CELL_W:.1f}" lengthAdjust="spacingAndGlyphs"{weight}{deco} '
            f'xml:space="preserve">{escape(word)}</text>'
        )
        i = j
    return parts
