"""The ready line: a server's one line on stdout, written and read only here.

    svcviz: fork listening on 127.0.0.1:6168 (pid 4242)

A script (or the lab, the tests, the benchmarks) starts `svcviz serve MODEL --port 0` and
learns from it where the server listens and which process it is.
"""

from __future__ import annotations

import re
from typing import NamedTuple

LINE = re.compile(r"svcviz: (\S+) listening on (\S+):(\d+) \(pid (\d+)\)")


class Ready(NamedTuple):
    model: str
    host: str
    port: int
    pid: int

    @property
    def address(self) -> str:
        return address_text(self.host, self.port)

    def line(self) -> str:
        return f"svcviz: {self.model} listening on {self.address} (pid {self.pid})"


def parse_ready(text: str) -> Ready | None:
    """The ready line in text (a line read off the server's stdout), or None."""
    match = LINE.search(text)
    if match is None:
        return None
    return Ready(match.group(1), match.group(2).strip("[]"), int(match.group(3)), int(match.group(4)))


def address_text(host: str, port: int) -> str:
    """host:port, with an IPv6 host in brackets: [::1]:6168."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
