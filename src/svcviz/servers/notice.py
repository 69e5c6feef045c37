"""What a running server tells whoever runs it, on stderr: one line format, written and read here.

    svcviz: note: SIGCHLD handling: reap
    svcviz: cap: process cap (256 processes) reached (256); waiting for a child to go
    svcviz: error: accept: Too many open files (EMFILE)

A person reads the lines as they are; the lab reads them with parse_notice and goes by the
kind alone, so the wording is free to change.
"""

from __future__ import annotations

import os
from typing import NamedTuple

NOTE = "note"  # what the server is doing: a worker restarted, SIGCHLD handling changed
CAP = "cap"  # a bound is reached: the server waits for room before it takes more
ERROR = "error"  # a system call failed (accept, a thread's creation): the server carries on
KINDS = (NOTE, CAP, ERROR)
PREFIX = "svcviz: "


class Notice(NamedTuple):
    kind: str
    text: str


def format_notice(kind: str, text: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    return f"{PREFIX}{kind}: {text}"


def notify(kind: str, text: str) -> None:
    """One os.write, not print: signal handlers notify too, and a buffered stream
    re-entered from a handler raises."""
    os.write(2, f"{format_notice(kind, text)}\n".encode())


def parse_notice(line: str) -> Notice | None:
    """The notice a line of the server's stderr holds, or None (a traceback, say)."""
    if not line.startswith(PREFIX):
        return None
    kind, colon, text = line[len(PREFIX) :].rstrip("\r\n").partition(": ")
    if not colon or kind not in KINDS:
        return None
    return Notice(kind, text)
