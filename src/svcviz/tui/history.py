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

    def columns(self, name: str, width: int) -> list[int | None]:
        """The minute cut into width columns, newest on the right: each column's peak, or
        None where nothing was sampled (before the lab started)."""
        return self.all_columns(width)[name]

    def all_columns(self, width: int) -> dict[str, list[int | None]]:
        """columns() of every series, in one pass over the minute."""
        peaks: dict[str, list[int | None]] = {name: [None] * max(width, 0) for name in SERIES}
        if not self.samples or width <= 0:
            return peaks
        start = self.samples[-1][0] - WINDOW
        step = WINDOW / width
        for when, values in self.samples:
            column = min(width - 1, int((when - start) / step))
            if column >= 0:
                for name, value in values.items():
                    series = peaks[name]
                    if series[column] is None or value > series[column]:
                        series[column] = value
        return peaks

    def latest(self, name: str) -> int:
        return self.samples[-1][1][name] if self.samples else 0
