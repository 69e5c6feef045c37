"""The last minute of a few figures, for the sparklines."""

from __future__ import annotations

from collections import deque

WINDOW = 60.0
SERIES = ("processes", "zombies", "threads", "queue")


def figures(snapshot) -> dict[str, int]:
    return {"processes": len(snapshot.processes), "zombies": len(snapshot.zombies),
            "threads": snapshot.thread_total, "queue": snapshot.queue_length}


class History:
    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, int]]] = deque()

    def add(self, snapshot) -> None:
        self.samples.append((snapshot.time, figures(snapshot)))
        while self.samples and self.samples[0][0] < snapshot.time - WINDOW:
            self.samples.popleft()

    def columns(self, name: str, width: int) -> list[int | None]:
        """The minute cut into width columns, newest on the right: each column's peak, or
        None where nothing was sampled (before the lab started)."""
        if not self.samples or width <= 0:
            return [None] * max(width, 0)
        end = self.samples[-1][0]
        step = WINDOW / width
        peaks: list[int | None] = [None] * width
        for when, values in self.samples:
            column = min(width - 1, int((when - (end - WINDOW)) / step))
            if column >= 0:
                value = values[name]
                peaks[column] = value if peaks[column] is None else max(peaks[column], value)
        return peaks

    def latest(self, name: str) -> int:
        return self.samples[-1][1][name] if self.samples else 0
