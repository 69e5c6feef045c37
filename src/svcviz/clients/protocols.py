"""What the clients say: the server's own language, so `c` against a web server is a real GET.

line: our models' protocol (a line asks, a line answers); http: a GET, the status line is
the answer; redis: inline commands (PING answers +PONG); raw: connect and hold, send only
what is typed. Watching a server svcviz did not start, the protocol is told by its port or,
failing that, by what the server says to a probe (see detect).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

NAMES = ("line", "http", "redis", "raw")
PORTS = {80: "http", 8000: "http", 8080: "http", 6379: "redis"}
GREETING_WAIT = 0.5  # seconds a probe listens before it speaks: a greeting server talks first
ANSWER_WAIT = 1.5  # seconds it then waits for an answer to PING
RESP_TYPES = tuple("+-:$*")  # the first byte of every Redis reply


@dataclass(frozen=True)
class Protocol:
    name: str
    greeting: str | None  # what an interactive client sends on connecting, if anything
    default_query: str  # what a scripted client asks when not told

    def request(self, text: str, host: str, port: int) -> bytes:
        """What a typed line sends: for http a GET of that path (`/` when it is no path)."""
        if self.name == "http":
            path = text.strip() if text.strip().startswith("/") else "/"
            return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: svcviz\r\n\r\n".encode()
        return text.encode() + b"\r\n"

    def asks(self, text: str) -> bool:
        """Whether the server answers this line: every request for http, any non-empty line else."""
        return self.name == "http" or bool(text.strip())

    def answers(self, line: str) -> bool:
        """Whether a received line is an answer (one a request is counted answered by)."""
        if self.name == "http":
            return line.startswith("HTTP/")
        if self.name == "redis":
            return line.startswith(RESP_TYPES)
        return True

    def shows(self, line: str) -> bool:
        """Whether a received line is what the dashboard shows as the last reply: for http
        the status line, not headers and body."""
        return self.name != "http" or line.startswith("HTTP/")


PROTOCOLS = {
    "line": Protocol("line", None, "discard"),
    "http": Protocol("http", "/", "/"),
    "redis": Protocol("redis", "PING", "PING"),
    "raw": Protocol("raw", None, ""),
}


async def detect(host: str, port: int) -> tuple[str, str]:
    """(protocol, why) for a server svcviz did not start: its port if well known, else a
    probe: a server that speaks first takes lines; else one PING tells Redis (+PONG) from
    HTTP (an HTTP/1.x error) from a line server (any other line)."""
    if port in PORTS:
        return PORTS[port], f"port {port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), ANSWER_WAIT)
    except (OSError, asyncio.TimeoutError) as exc:
        return "line", f"the probe could not connect ({exc or 'timed out'})"
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            greeting = await asyncio.wait_for(reader.readline(), GREETING_WAIT)
            if greeting:
                return "line", "the server greets first"
        writer.write(b"PING\r\n")
        try:
            answer = (await asyncio.wait_for(reader.readline(), ANSWER_WAIT)).decode(errors="replace")
        except (OSError, asyncio.TimeoutError):
            return "line", "no answer to a probe's PING"
        if answer.startswith("+PONG"):
            return "redis", "the server answered PING with +PONG"
        if answer.startswith("HTTP/"):
            return "http", "the server answered PING with an HTTP status"
        if answer.lstrip().lower().startswith(("<!doctype html", "<html")):  # an HTTP/0.9-style error page
            return "http", "the server answered PING with an HTML page"
        if not answer:
            return "raw", "the server closed the probe without a word"
        return "line", "the server answered PING with a line"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
