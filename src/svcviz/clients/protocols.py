"""What the clients say: the server's own language, so `c` against a web server is a real GET.

line: our models' protocol (a line asks, a line answers); http: a GET, the status line is
the answer; redis: inline commands (PING answers +PONG); raw: connect and hold, send only
what is typed. Watching a server svcviz did not start, the protocol is told by its port or
its program (see detect).
"""

from __future__ import annotations

from typing import NamedTuple

NAMES = ("line", "http", "redis", "raw")
PORTS = {80: "http", 8000: "http", 8080: "http", 6379: "redis"}
RESP_TYPES = tuple("+-:$*")  # the first byte of every Redis reply


class Protocol(NamedTuple):
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


# Words in a server's title (its cmdline as it set it) that name its language.
PROGRAMS = (
    ("redis-server", "redis"),
    ("valkey-server", "redis"),
    ("nginx", "http"),
    ("httpd", "http"),
    ("apache2", "http"),
    ("gunicorn", "http"),
    ("uvicorn", "http"),
    ("http.server", "http"),
)


def detect(port: int, title: str) -> tuple[str, str]:
    """(protocol, why) for a server svcviz did not start, from kernel facts only: its port
    if well known, else its program's title. No probe: a probe would be a connection of its
    own, and a server that serves one client (or logs each) would be changed by watching it."""
    if port in PORTS:
        return PORTS[port], f"port {port}"
    for word, name in PROGRAMS:
        if word in title:
            return name, f"the server is {word}"
    return "line", "neither its port nor its program tells: --client-protocol chooses"
