"""A real fork session recorded (c, x, w): the zombie's life from the kernel, on disk."""

from __future__ import annotations

import asyncio
import time

from svcviz.lab import Lab, LabUpdate
from svcviz.record.recording_lab import RecordingLab
from svcviz.record.writer import Writer
from svcviz.servers.config import ServerConfig


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def record_fork_session(path) -> tuple[list[LabUpdate], LabUpdate]:
    """c, x, w on the fork model, recorded to `path`: every update the consumer got (as the
    dashboard gets them) and the first one that showed the zombie."""
    lab = RecordingLab(Lab(ServerConfig("fork", port=0), rate=20), Writer(str(path)))
    seen: list[LabUpdate] = []

    async def consume() -> None:
        async for update in lab.updates():
            seen.append(update)

    await lab.start()
    consumer = asyncio.create_task(consume())
    try:
        await lab.add_clients(1)  # c
        await until(lambda: seen and any(c.state == "accepted" for c in seen[-1].snapshot.connections))
        await lab.close_client()  # x: the child serving it exits; SIGCHLD default: a zombie
        await until(lambda: seen[-1].snapshot.zombies)
        zombie_at = next(u for u in seen if u.snapshot.zombies)
        await lab.reap_now()  # w
        await until(lambda: not seen[-1].snapshot.zombies and seen[-1].snapshot.time > zombie_at.snapshot.time)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await lab.stop()
    return seen, zombie_at
