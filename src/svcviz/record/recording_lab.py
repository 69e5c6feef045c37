"""RecordingLab: a Lab that also writes each update it gives out, so the dashboard
records without knowing it (it consumes this exactly as it would the lab)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from svcviz.lab import Lab, LabUpdate
from svcviz.record.writer import Writer


class RecordingLab:
    def __init__(self, lab: Lab, writer: Writer) -> None:
        self._lab = lab
        self.writer = writer

    def __getattr__(self, name: str) -> Any:  # Any: whatever the lab's attribute of that name is
        return getattr(self._lab, name)  # everything but the updates is the lab's own

    async def updates(self) -> AsyncIterator[LabUpdate]:
        async for update in self._lab.updates():
            self.writer.write(update)
            yield update

    async def sample(self) -> LabUpdate:
        update = await self._lab.sample()
        self.writer.write(update)
        return update

    async def stop(self) -> None:
        try:
            await self._lab.stop()
        finally:
            self.writer.close()


def with_recording(lab: Lab, path: str | None) -> Lab | RecordingLab:
    """The lab itself, or one that records to path (RecordError when path cannot be written)."""
    return lab if path is None else RecordingLab(lab, Writer(path))
