"""What `svcviz replay FILE` feeds the dashboard instead of a live lab.

ReplayLab is lab-shaped: its stream yields the recorded LabUpdate at the current position,
again each time the position moves, by playing (at the recorded pace times `speed`) or by
a seek (a sample or an event back and forth, start, end). All samples are decoded once and
kept: a 10-minute recording is a few thousand. Every key that would steer a server says
it is a replay instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine

from svcviz.lab import LabError, LabUpdate
from svcviz.observe.snapshot import Event
from svcviz.record.format import FormatError
from svcviz.record.reader import Recording
from svcviz.servers.config import ServerConfig

NOTHING_TO_STEER = "a replay shows what was recorded: there is no server to steer"
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class ReplayLab:
    controls_server = False
    server_pid: int | None = None  # no server process runs: nothing to trace (t)

    def __init__(self, recording: Recording, *, playing: bool = True) -> None:
        self.recording = recording
        self.samples: list[LabUpdate] = list(recording)
        if not self.samples:
            raise FormatError(f"{recording.path}: no samples to replay (svcviz stopped before its first)")
        self.start_time = self.samples[0].snapshot.time
        self.duration = self.samples[-1].snapshot.time - self.start_time
        # Every event in order, and how many of them came with the samples up to each one:
        # the event log at any position is a slice, not a re-scan.
        self.events: list[Event] = []
        self._events_through: list[int] = []
        for update in self.samples:
            self.events.extend(update.events)
            self._events_through.append(len(self.events))
        self.position = 0
        self.playing = playing and len(self.samples) > 1
        self.speed = 1.0
        self.status = "replay"
        self._moved = asyncio.Event()

    # -- what the dashboard reads ------------------------------------------------------

    @property
    def latest(self) -> LabUpdate:
        return self.samples[self.position]

    @property
    def config(self) -> ServerConfig:
        return self.latest.config

    @property
    def paused(self) -> bool:
        return not self.playing

    def elapsed(self, index: int | None = None) -> float:
        """Seconds from the first sample to sample `index` (the current one by default)."""
        return self.samples[self.position if index is None else index].snapshot.time - self.start_time

    def log_through(self, index: int, keep: int) -> tuple[Event, ...]:
        """The newest `keep` events of the samples up to `index`, oldest first."""
        end = self._events_through[index]
        return tuple(self.events[max(0, end - keep) : end])

    def event_positions(self) -> list[int]:
        return [i for i, update in enumerate(self.samples) if update.events]

    # -- moving --------------------------------------------------------------------------

    def seek(self, index: int) -> None:
        self.position = max(0, min(len(self.samples) - 1, index))
        if self.position == len(self.samples) - 1:
            self.playing = False
        self._moved.set()

    def step(self, samples: int) -> None:
        self.seek(self.position + samples)

    def step_event(self, direction: int) -> None:
        """To the next (direction 1) or previous (-1) sample that brought events."""
        indices = range(self.position + 1, len(self.samples)) if direction > 0 else range(self.position - 1, -1, -1)
        for i in indices:
            if self.samples[i].events:
                self.seek(i)
                return
        self.seek(len(self.samples) - 1 if direction > 0 else 0)

    def toggle_play(self) -> None:
        if not self.playing and self.position == len(self.samples) - 1:
            self.position = 0  # play again from the start, as players do at the end
        self.playing = not self.playing and len(self.samples) > 1
        self._moved.set()

    def change_speed(self, step: int) -> None:
        index = SPEEDS.index(self.speed) if self.speed in SPEEDS else SPEEDS.index(1.0)
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, index + step))]
        self._moved.set()

    # -- lab-shaped ------------------------------------------------------------------------

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def stop_now(self) -> None:
        pass

    def pause(self) -> None:
        self.playing = False
        self._moved.set()

    def resume(self) -> None:
        if not self.playing:
            self.toggle_play()

    async def updates(self) -> AsyncIterator[LabUpdate]:
        while True:
            self._moved.clear()
            yield self.latest
            wait = None
            if self.playing and self.position < len(self.samples) - 1:
                gap = self.samples[self.position + 1].snapshot.time - self.latest.snapshot.time
                wait = max(0.0, gap) / self.speed
            try:
                await asyncio.wait_for(self._moved.wait(), wait)
            except TimeoutError:
                self.seek(self.position + 1)  # played on to the next sample

    def __getattr__(self, name: str) -> Callable[..., Coroutine[None, None, None]]:
        async def refuse(*args: object, **kwargs: object) -> None:
            raise LabError(NOTHING_TO_STEER)

        return refuse
