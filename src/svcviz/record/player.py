"""What `svcviz replay FILE` feeds the dashboard instead of a live lab.

ReplayLab is lab-shaped: it yields the recorded LabUpdates at the pace they were taken,
and every key that would steer a server says it is a replay instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from svcviz.lab import LabError, LabUpdate
from svcviz.record.reader import Recording

NOTHING_TO_STEER = "a replay shows what was recorded: there is no server to steer"


class ReplayLab:
    controls_server = False

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.paused = False
        self.latest: LabUpdate | None = None
        self.status = "replay"

    @property
    def config(self):
        return self.latest.config if self.latest else None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def stop_now(self) -> None:
        pass

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    async def updates(self) -> AsyncIterator[LabUpdate]:
        previous = None
        for update in self.recording:
            if previous is not None:
                await asyncio.sleep(max(0.0, update.snapshot.time - previous))
            while self.paused:
                await asyncio.sleep(0.05)
            previous = update.snapshot.time
            self.latest = update
            yield update

    def __getattr__(self, name: str):
        async def refuse(*args, **kwargs) -> None:
            raise LabError(NOTHING_TO_STEER)

        return refuse
