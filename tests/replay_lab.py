"""A lab-shaped source of recorded LabUpdates, for tests of the dashboard.

The app consumes it exactly as it consumes a real Lab (start, the updates stream, stop),
so what a test pushes reaches the panels through the app's own path: it is a LabLike
(svcviz.lab.shape). It steers nothing: every control call fails with a LabError, which
the app shows as a notice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from svcviz.lab import LabError, LabUpdate
from svcviz.servers.config import ServerConfig


class ReplayLab:
    def __init__(self, config: ServerConfig | None = None, *, controls_server: bool = True) -> None:
        self.config = config or ServerConfig("serial")
        # True: the app draws a model's screen (model keys on), as the snapshots show it;
        # False: watch mode.
        self.controls_server = controls_server
        self.status = "replaying"
        self.paused = False
        self.server_pid: int | None = None  # no server process: t has nothing to trace
        self._queue: asyncio.Queue[LabUpdate] = asyncio.Queue()

    def push(self, *updates: LabUpdate) -> None:
        for update in updates:
            self._queue.put_nowait(update)

    async def updates(self) -> AsyncIterator[LabUpdate]:
        while True:
            update = await self._queue.get()
            self.config = update.config
            yield update

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.status = "stopped"

    def stop_now(self) -> None:
        self.status = "stopped"

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    async def _refuse(self, *args: object, **kwargs: object) -> None:
        raise LabError("a replay steers no server")

    add_clients = blast = close_client = close_all_clients = forget_finished_clients = send_line = _refuse
    switch_model = restart = kill_server = cycle_sigchld = reap_now = _refuse


async def drawn_after(pilot, lab: ReplayLab, *updates: LabUpdate) -> None:
    """Push each update and wait until the app has drawn it (one sample at a time, as the
    lab would have paced them, so none is superseded)."""
    for update in updates:
        lab.push(update)
        while pilot.app.latest is not update:
            await pilot.pause()
    await pilot.pause()
