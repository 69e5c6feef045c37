"""The last minute of a few figures, for the sparklines: each second's peak."""

from __future__ import annotations

from collections import deque

from svcviz.observe.snapshot import Snapshot

WINDOW = 60  # seconds, one bar's worth of data each (the Sparkline groups them to its width)
SERIES = ("processes", "zombies", "threads", "queue")


def figures(snapshot: Snapshot) -> dict[str, int]:
    return {
        "processes": len(snapshot.processes),
        "zombies": len(snapshot.zombies),
        "threads": snapshot.thread_total,
        "queue": snapshot.queue_length,
    }


class History:
    """Per-second peaks, so a steady figure gives the same series sample after sample (and
    its sparkline is not repainted); seconds with no sample (before the lab started, while
    paused) have no entry."""

    def __init__(self) -> None:
        self.seconds: deque[tuple[int, dict[str, int]]] = deque()
        self.last: dict[str, int] = dict.fromkeys(SERIES, 0)

    def add(self, snapshot: Snapshot) -> None:
        self.last = figures(snapshot)
        second = int(snapshot.time)
        if self.seconds and second < self.seconds[-1][0]:
            self.seconds.clear()  # an earlier sample (a replay stepped back): its minute starts again
        if self.seconds and self.seconds[-1][0] == second:
            peaks = self.seconds[-1][1]
            self.seconds[-1] = (second, {name: max(peaks[name], value) for name, value in self.last.items()})
        else:
            self.seconds.append((second, self.last))
        while self.seconds[0][0] <= second - WINDOW:
            self.seconds.popleft()

    def series(self, name: str) -> tuple[int, ...]:
        """The minute's peaks of one figure, oldest first."""
        return tuple(peaks[name] for _, peaks in self.seconds)

    def latest(self, name: str) -> int:
        return self.last[name]
