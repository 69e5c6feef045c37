"""The service database (the lecture's cache) and the line protocol every model speaks.

One request per line: a service name, optionally ``/proto`` (tcp by default)::

    $ printf 'discard\\nfoo\\nsmtp/udp\\n' | svcviz parse
    discard,9
    error: unknown service 'foo'
    error: unknown service 'smtp/udp'

The database is ``/etc/services`` when present, else a bundled list, because minimal
containers ship no ``/etc/services``.
"""

from __future__ import annotations

import enum
import io
import os
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple, cast

from svcviz.plain import unprintable

MAX_LINE = 1024
ETC_SERVICES = Path("/etc/services")

ERR_TOO_LONG = f"error: line too long (max {MAX_LINE} bytes)"
ERR_NOT_A_NAME = "error: not a service name"
# Only ASCII blanks: str.strip() would also take U+0085 (a C1 control) and U+001C-001F.
TRAILING_BLANKS = " \t\r\n\v\f"


def parse_services(text: str) -> dict[tuple[str, str], int]:
    """Parse services(5) text: ``name port/proto [aliases...] [# comment]``."""
    table: dict[tuple[str, str], int] = {}
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 2 or "/" not in words[1]:
            continue
        port_text, proto = words[1].split("/", 1)
        if not port_text.isdigit():
            continue
        for name in [words[0], *words[2:]]:
            table.setdefault((name, proto), int(port_text))
    return table


class ServiceDB(NamedTuple):
    table: dict[tuple[str, str], int]
    source: str

    def __repr__(self) -> str:  # not the thousands of entries
        return f"ServiceDB({len(self.table)} entries from {self.source})"

    def lookup(self, name: str, proto: str = "tcp") -> int | None:
        return self.table.get((name, proto))


@cache
def load_db(path: str | None = None) -> ServiceDB:
    """Load the database once per process: the cache the lecture builds."""
    candidate = Path(path) if path else ETC_SERVICES
    if candidate.is_file():
        try:
            return ServiceDB(parse_services(candidate.read_text(errors="replace")), str(candidate))
        except OSError:
            pass
    bundled = resources.files("svcviz").joinpath("services.txt").read_text()
    return ServiceDB(parse_services(bundled), "bundled")


def reply(line: bytes, db: ServiceDB) -> str | None:
    """The reply to one request line (its newline already removed), or None for no reply."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return ERR_NOT_A_NAME
    text = text.rstrip(TRAILING_BLANKS)
    if not text:
        return None
    # Controls (C0, DEL, C1) and format characters (bidi overrides...) are never echoed back:
    # the reply would reach the client's terminal, and a terminal obeys them.
    if any(unprintable(ch) for ch in text):
        return ERR_NOT_A_NAME
    name, _, proto = text.partition("/")
    port = db.lookup(name, proto or "tcp")
    if port is None:
        return f"error: unknown service '{text}'"
    return f"{name},{port}"


class TooLong(enum.Enum):
    """What LineReader yields, once, for a line over MAX_LINE bytes (a one-member enum, so a type)."""

    TOO_LONG = "too long"


class LineReader:
    """Split a byte stream into request lines, at most MAX_LINE bytes each.

    A line longer than that yields TOO_LONG once and the rest of it is dropped, so a client
    that sends a megabyte without a newline costs the server MAX_LINE bytes, not a megabyte.
    """

    TOO_LONG = TooLong.TOO_LONG

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | TooLong]:
        items: list[bytes | TooLong] = []
        self._buffer += data
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                # +1: a full-length line may still be waiting for the \n of its \r\n.
                if not self._discarding and len(self._buffer) > MAX_LINE + 1:
                    items.append(self.TOO_LONG)
                    self._discarding = True
                if self._discarding:
                    self._buffer.clear()
                return items
            line = bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            if self._discarding:
                self._discarding = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            items.append(self.TOO_LONG if len(line) > MAX_LINE else line)


def replies_for(items: list[bytes | TooLong], db: ServiceDB) -> list[str]:
    """Replies, in order, for what a LineReader produced."""
    out = []
    for item in items:
        answer = reply(item, db) if isinstance(item, bytes) else ERR_TOO_LONG
        if answer is not None:
            out.append(answer)
    return out


def parse_main() -> int:
    """`svcviz parse`: the lecture's serviceparser, stdin lines to stdout replies, streaming."""
    db = load_db()
    reader = LineReader()
    # typeshed types stdin's buffer as BinaryIO, which has no read1; at run time it is the
    # BufferedReader that read1 (return what is there, without waiting for 64 KiB) needs.
    stdin = cast(io.BufferedReader, sys.stdin.buffer)
    stdout = sys.stdout.buffer
    try:
        while True:
            chunk = stdin.read1(65536)
            items = reader.feed(chunk if chunk else b"\n")
            for answer in replies_for(items, db):
                stdout.write(answer.encode() + b"\n")
            stdout.flush()
            if not chunk:
                return 0
    except BrokenPipeError:
        # The reader went away (`| head -3`): stop quietly, and keep Python's exit-time
        # flush of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
