"""Caps, as the lab sees them: the last one hit (the dashboard's banner), and the lab's own
check, the second line of defence behind the server's own caps."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from svcviz.observe.snapshot import Snapshot
from svcviz.servers.config import ServerConfig

if TYPE_CHECKING:
    from svcviz.observe.snapshot import EventKind


class Caps:
    def __init__(self, note: Callable[[EventKind, str], None]) -> None:
        self._note = note
        self.hit: str | None = None

    def reached(self, text: str) -> None:
        """A cap was hit (the server's, the fleet's or the lab's): shown until the next server."""
        self.hit = text
        self._note("cap", text)

    def clear(self) -> None:
        self.hit = None

    def exceeded(self, snapshot: Snapshot, config: ServerConfig) -> bool:
        """Whether the server's tree is past its cap, whatever the model did: then it is
        recorded as hit, and the caller stops the server."""
        over = None
        if len(snapshot.processes) > config.cap_procs:
            over = f"{len(snapshot.processes)} processes > cap {config.cap_procs}"
        elif snapshot.thread_total > config.cap_threads:
            over = f"{snapshot.thread_total} threads > cap {config.cap_threads}"
        if over:
            self.reached(f"server stopped: {over}")
        return over is not None
