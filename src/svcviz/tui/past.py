"""The last minute of samples kept in the live dashboard, to step back through while paused.

The lab yields each sample as plain data: keeping the LabUpdates of the last 60 s costs a
few hundred references, and a paused screen can show any of them (htop's freeze, btop's
history), saying how long ago it was.
"""

from __future__ import annotations

from collections import deque

from svcviz.lab import LabUpdate

KEEP_SECONDS = 60.0


class Past:
    def __init__(self, seconds: float = KEEP_SECONDS) -> None:
        self.seconds = seconds
        self.samples: deque[LabUpdate] = deque()
        self.back = 0  # how many samples before the newest the screen shows; 0: the newest

    def add(self, update: LabUpdate) -> None:
        self.samples.append(update)
        newest = update.snapshot.time
        while self.samples[0].snapshot.time < newest - self.seconds:
            self.samples.popleft()
        self.back = 0

    def step(self, samples: int) -> LabUpdate | None:
        """Move back (negative) or forward through the kept samples; the one now shown."""
        if not self.samples:
            return None
        self.back = max(0, min(len(self.samples) - 1, self.back - samples))
        return self.shown

    @property
    def shown(self) -> LabUpdate:
        return self.samples[-1 - self.back]

    def ago(self) -> float:
        """Seconds between the sample shown and the newest one."""
        return self.samples[-1].snapshot.time - self.shown.snapshot.time
