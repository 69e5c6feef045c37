"""Text from outside svcviz (a client's line, a server's reply, a process's name or command
line) made safe to print: no terminal controls, no invisible bidi tricks.

A terminal obeys ESC and CSI (C1 U+009B) sequences wherever they come from, and a
right-to-left override (U+202E) reorders what follows it on screen: so such characters are
never passed through, they are shown as escapes (\\x1b, \\u202e) that say what was there.
"""

from __future__ import annotations

import unicodedata

# Cc: C0, DEL and C1 controls; Cf: format characters (bidi overrides, zero-width joiners);
# Cs: lone surrogates; Zl, Zp: line and paragraph separators (a line break in some terminals).
UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unprintable(ch: str) -> bool:
    return unicodedata.category(ch) in UNPRINTABLE


def escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def plain(text: str) -> str:
    """text with each unprintable character replaced by its escape: \\x1b, \\x0a, \\u202e."""
    if text.isprintable():  # the usual case, and a quick one: isprintable() is False for all of them
        return text
    return "".join(escape(ch) if unprintable(ch) else ch for ch in text)
