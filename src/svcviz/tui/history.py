"""The last minute of a few figures, for the sparklines."""

from __future__ import annotations

from collections import deque

WINDOW = 60.0
SERIES = ("processes", "zombies", "threads", "queue")


def figures(snapshot) -> dict[str, int]:
    return {
        "processes": len(snapshot.processes),
        "zombies": len(snapshot.zombies),
        "threads": snapshot.thread_total,
        "queue": snapshot.queue_length,
    }


class History:
    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, int]]] = deque()

    def add(self, snapshot) -> None:
        self.samples.append((snapshot.time, figures(snapshot)))
        while self.samples and self.samples[0][0] < snapshot.time - WINDOW:
            self.samples.popleft()

    def series(self, name: str) -> tuple[int, ...]:
        """The minute's values of one figure, oldest first (a Sparkline cuts them into bars)."""
        return tuple(values[name] for _, values in self.samples)

    def latest(self, name: str) -> int:
        return self.samples[-1][1][name] if self.samples else 0
