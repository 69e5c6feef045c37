"""The lesson's checklist in the dashboard, fed a recording of a real session: a step must
tick in the lesson panel on the very sample where the kernel fact it names is first
recorded, and not one sample before.

A real lab runs a lesson's keys (as lab calls) and records every sample to disk; the
recording is read back and fed, one sample at a time, to the dashboard (Pilot). Each
step's moment is found in the recorded snapshots by this file's own reading of the facts
(a zombie whose parent is the server, the listen socket's Recv-Q...), not by the
checklist's code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from replay_lab import ReplayLab
from svcviz.lab import Lab, LabUpdate
from svcviz.record.reader import Recording
from svcviz.record.recording_lab import RecordingLab
from svcviz.record.writer import Writer
from svcviz.servers.config import ServerConfig
from svcviz.servers.registry import BY_NAME
from svcviz.tui.app import SvcvizApp
from svcviz.tui.widgets import LessonPanel

Action = Callable[[Lab], Awaitable[object]]
Seen = Callable[[LabUpdate], bool]  # the newest sample shows what the action was for


async def record(path, model: str, script: list[tuple[Action, Seen]]) -> list[LabUpdate]:
    """Run the script on a real lab (each action, then samples until its result is seen),
    recording every sample to path; the samples as read back from the file."""
    lab = RecordingLab(Lab(ServerConfig(model, port=0), rate=20), Writer(str(path)))
    newest: list[LabUpdate] = []

    async def consume() -> None:
        async for update in lab.updates():
            newest[:] = [update]

    await lab.start()
    consumer = asyncio.create_task(consume())
    try:
        script = [(lambda lab: asyncio.sleep(0), lambda u: True), *script]  # a sample before any key
        for act, seen in script:
            await act(lab)
            deadline = time.monotonic() + 10
            while not (newest and seen(newest[0])):
                assert time.monotonic() < deadline, f"{model}: the lab never showed what {act} is for"
                await asyncio.sleep(0.02)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await lab.stop()
    return list(Recording(str(path)))


def first(samples: list[LabUpdate], start: int, fact: Callable[[int, LabUpdate], bool]) -> int:
    """The index of the first sample from start on where fact(index, sample) holds."""
    return next(i for i in range(start, len(samples)) if fact(i, samples[i]))


def conn_state(update: LabUpdate, client_id: int) -> str | None:
    view = next((v for v in update.clients if v.id == client_id), None)
    port = view.local_port if view else None
    return next((c.state for c in update.snapshot.connections if port and c.client_port == port), None)


def zombies_of_server(update: LabUpdate) -> int:
    return sum(1 for p in update.snapshot.zombies if p.ppid == update.server_pid)


def children_of_server(update: LabUpdate) -> int:
    return sum(1 for p in update.snapshot.processes if p.ppid == update.server_pid)


def state_of(update: LabUpdate, client_id: int) -> str | None:
    return next((v.state for v in update.clients if v.id == client_id), None)


# -- the lessons, as keys (lab calls) and as the kernel facts that show each step done --


def fork_script() -> list[tuple[Action, Seen]]:
    return [
        (lambda lab: lab.add_clients(1), lambda u: conn_state(u, 1) == "accepted"),  # c
        (lambda lab: lab.close_client(1), lambda u: zombies_of_server(u) == 1),  # x
        (lambda lab: lab.reap_now(), lambda u: zombies_of_server(u) == 0),  # w
        (lambda lab: lab.cycle_sigchld(), lambda u: u.config.sigchld == "ignore"),  # s
        (lambda lab: lab.add_clients(1), lambda u: conn_state(u, 2) == "accepted"),  # c
        (lambda lab: lab.close_client(2), lambda u: state_of(u, 2) == "quit" and children_of_server(u) == 0),  # x
    ]


def fork_ticks(samples: list[LabUpdate]) -> list[int]:
    zombie = first(samples, 0, lambda i, u: zombies_of_server(u) >= 1)
    reaped = first(samples, zombie, lambda i, u: zombies_of_server(u) == 0 and u.status == "running")
    known = {v.id for v in samples[reaped].clients}  # the next step is judged on clients added after
    discarded = first(
        samples,
        reaped,
        lambda i, u: (
            u.config.sigchld == "ignore"
            and any(v.id not in known and v.state == "quit" for v in u.clients)
            and zombies_of_server(u) == 0
            and children_of_server(u) == 0
        ),
    )
    return [zombie, reaped, discarded]


def serial_script() -> list[tuple[Action, Seen]]:
    return [
        (lambda lab: lab.add_clients(1), lambda u: conn_state(u, 1) == "accepted"),  # c
        (lambda lab: lab.add_clients(1), lambda u: u.snapshot.queue_length == 1),  # c
        (lambda lab: lab.add_clients(1), lambda u: u.snapshot.queue_length == 2),  # c
        (lambda lab: lab.close_client(3), lambda u: state_of(u, 3) == "quit"),  # x (the newest)
        (lambda lab: lab.close_client(1), lambda u: conn_state(u, 2) == "accepted"),  # home, x (the first)
    ]


def serial_ticks(samples: list[LabUpdate]) -> list[int]:
    # the listen socket's Recv-Q (what ss -ltn shows) holds two
    queued = first(samples, 0, lambda i, u: sum(s.queue for s in u.snapshot.listen) >= 2)
    served = first(
        samples,
        queued,
        lambda i, u: state_of(u, 1) == "quit" and state_of(u, 3) == "quit" and conn_state(u, 2) == "accepted",
    )
    return [queued, served]


LESSONS = {"fork": (fork_script, fork_ticks), "serial": (serial_script, serial_ticks)}


@pytest.mark.parametrize("model", sorted(LESSONS))
async def test_each_step_ticks_on_the_sample_that_shows_its_fact(tmp_path, model):
    script, ticks_of = LESSONS[model]
    samples = await record(tmp_path / f"{model}.jsonl", model, script())
    ticks = ticks_of(samples)
    # each step has samples before its moment, where it must not tick yet
    assert 0 < ticks[0] < ticks[1] and ticks == sorted(set(ticks)), ticks
    total = len(BY_NAME[model].lesson.try_next)
    lab = ReplayLab(ServerConfig(model))
    app = SvcvizApp(lab)
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(LessonPanel)
        for index, update in enumerate(samples):
            lab.push(update)
            while not (app.past.samples and app.past.samples[-1] is update and panel.latest is app.latest):
                await pilot.pause()
            await pilot.pause()
            expected = sum(1 for tick in ticks if tick <= index)
            assert panel.done == expected, f"sample {index}: {panel.done} done, the kernel facts say {expected} {ticks}"
            assert panel.border_subtitle == f"{model}: {expected}/{total} done"
