"""SVG snapshots of the dashboard, made deterministic: fixed data fed through a ReplayLab
(the app consumes it as it does a real lab), a fixed terminal size, UTC clock.

Update after a deliberate change with `pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import os
import time

import pytest

from big_servers import prefork_threads, threads_200
from replay_lab import ReplayLab, drawn_after
from svcviz.clients import ClientView
from svcviz.lab import LabUpdate
from svcviz.observe.snapshot import Connection, Counters, Event, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.servers.config import ServerConfig
from svcviz.tui.app import SvcvizApp

T0 = 1_800_000_000.0
PORT = 6168
ROOT = 4242
SIZE = (120, 36)
SERVER = f"127.0.0.1:{PORT}"


@pytest.fixture(autouse=True)
def utc_clock():
    """Event stamps are local time: pin the zone so the SVGs match on any machine."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def client(id: int, state: str, port: int, reply: str | None = None, is_open: bool = True) -> ClientView:
    return ClientView(
        id=id,
        kind="interactive",
        state=state,
        open=is_open,
        local_port=port,
        connect_ms=0.2,
        sent=int(reply is not None),
        received=int(reply is not None),
        last_reply=reply,
        error=None,
        started=T0,
    )


def conn_fd(fd: int, port: int) -> Fd:
    return Fd(fd, "conn", peer=f"127.0.0.1:{port}", local=SERVER, tcp_state="ESTABLISHED")


LISTEN_FD = Fd(3, "listen", local=SERVER)


def scene(
    model: str, *, processes, connections=(), clients=(), queue=0, listening=True, events=(), drops=0, **config
) -> LabUpdate:
    listen = (ListenSocket(SERVER, PORT, queue, config.get("backlog", 8), ROOT, 3),) if listening else ()
    snapshot = Snapshot(
        time=T0 + 30,
        root_pid=ROOT,
        listen=listen,
        processes=tuple(processes),
        connections=tuple(connections),
        counters=Counters(drops, drops),
    )
    events = (Event(T0, "server", f"started {model} on {SERVER} (pid {ROOT})", ROOT), *events)
    return LabUpdate(
        snapshot=snapshot,
        events=events,
        clients=tuple(clients),
        config=ServerConfig(model, **config),
        server_pid=ROOT,
        status="running",
        cap_hit=None,
    )


def one_process(model: str, served: list[int], waiting: list[int], **kw) -> LabUpdate:
    """A one-process server serving `served` client ports, with `waiting` in its queue."""
    fds = (LISTEN_FD, *(conn_fd(4 + i, port) for i, port in enumerate(served)))
    conns = [Connection(f"127.0.0.1:{p}", SERVER, "accepted", "ESTABLISHED", ROOT, 4 + i) for i, p in enumerate(served)]
    conns += [Connection(f"127.0.0.1:{p}", SERVER, "queued", "ESTABLISHED") for p in waiting]
    clients = [client(i + 1, "served", p, "discard,9") for i, p in enumerate(served)]
    clients += [client(len(served) + i + 1, "waiting", p) for i, p in enumerate(waiting)]
    events = [Event(T0 + 1 + i, "accept", f"{ROOT} accepted :{p} on fd {4 + i}", ROOT) for i, p in enumerate(served)]
    events += [Event(T0 + 5 + i, "queued", f":{p} waits in the accept queue") for i, p in enumerate(waiting)]
    return scene(
        model,
        processes=[Process(ROOT, 1, "svcviz", "S", (Thread(ROOT, "S"),), fds=fds)],
        connections=conns,
        clients=clients,
        queue=len(waiting),
        events=events,
        **kw,
    )


def fork_with_zombie() -> LabUpdate:
    child = Process(4250, ROOT, "svcviz", "S", (Thread(4250, "S"),), fds=(LISTEN_FD, conn_fd(4, 40002)))
    return scene(
        "fork",
        processes=[
            Process(ROOT, 1, "svcviz", "S", (Thread(ROOT, "S"),), fds=(LISTEN_FD,)),
            child,
            Process(4251, ROOT, "svcviz", "Z"),
        ],
        connections=[Connection("127.0.0.1:40002", SERVER, "accepted", "ESTABLISHED", 4250, 4)],
        clients=[client(1, "closed", 40000, "discard,9", is_open=False), client(2, "served", 40002)],
        events=[
            Event(T0 + 1, "fork", f"fork 4251 (parent {ROOT})", 4251),
            Event(T0 + 2, "fork", f"fork 4250 (parent {ROOT})", 4250),
            Event(T0 + 3, "exit", "4251 exited -> zombie", 4251),
        ],
    )


def fork_adopted() -> LabUpdate:
    orphan = Process(
        4250, os.getpid(), "svcviz", "S", (Thread(4250, "S"),), fds=(LISTEN_FD, conn_fd(4, 40002)), adopted=True
    )
    update = scene(
        "fork",
        processes=[orphan],
        clients=[client(1, "served", 40002)],
        connections=[Connection("127.0.0.1:40002", SERVER, "accepted", "ESTABLISHED", 4250, 4)],
        events=[
            Event(T0 + 4, "server", f"killed the server (pid {ROOT}) with SIGKILL"),
            Event(T0 + 4.1, "adopted", "4250 adopted by svcviz", 4250),
        ],
    )
    return LabUpdate(**{**update._asdict(), "status": "killed"})


def threads(model: str, count: int, waiting: list[int] = (), **kw) -> LabUpdate:
    tids = [ROOT + 1 + i for i in range(count)]
    ports = [42000 + 2 * i for i in range(count)]
    fds = (LISTEN_FD, *(conn_fd(4 + i, p) for i, p in enumerate(ports)))
    conns = [
        Connection(f"127.0.0.1:{p}", SERVER, "accepted", "ESTABLISHED", ROOT, 4 + i, tids[i])
        for i, p in enumerate(ports)
    ]
    conns += [Connection(f"127.0.0.1:{p}", SERVER, "queued", "ESTABLISHED") for p in waiting]
    process = Process(ROOT, 1, "svcviz", "S", (Thread(ROOT, "S"), *(Thread(t, "S") for t in tids)), fds=fds)
    clients = [client(i + 1, "served", p) for i, p in enumerate(ports)]
    clients += [client(count + i + 1, "waiting", p) for i, p in enumerate(waiting)]
    return scene(model, processes=[process], connections=conns, clients=clients, queue=len(waiting), **kw)


def prefork() -> LabUpdate:
    workers = [
        Process(
            ROOT + 1 + i,
            ROOT,
            "svcviz",
            "S",
            (Thread(ROOT + 1 + i, "S"),),
            fds=(LISTEN_FD, *((conn_fd(4, 43000 + 2 * i),) if i < 4 else ())),
        )
        for i in range(4)
    ]
    conns = [
        Connection(f"127.0.0.1:{43000 + 2 * i}", SERVER, "accepted", "ESTABLISHED", ROOT + 1 + i, 4) for i in range(4)
    ]
    conns.append(Connection("127.0.0.1:43008", SERVER, "queued", "ESTABLISHED"))
    clients = [client(i + 1, "served", 43000 + 2 * i) for i in range(4)] + [client(5, "waiting", 43008)]
    return scene(
        "prefork",
        processes=[Process(ROOT, 1, "svcviz", "S", (Thread(ROOT, "S"),), fds=(LISTEN_FD,)), *workers],
        connections=conns,
        clients=clients,
        queue=1,
    )


SCENES = {
    "listen-only": lambda: one_process("listen-only", [], [41000, 41002, 41004]),
    "accept-once": lambda: scene(
        "accept-once",
        listening=False,
        processes=[Process(ROOT, 1, "svcviz", "S", (Thread(ROOT, "S"),), fds=(conn_fd(4, 41000),))],
        connections=[Connection("127.0.0.1:41000", SERVER, "accepted", "ESTABLISHED", ROOT, 4)],
        clients=[client(1, "served", 41000, "discard,9"), client(2, "refused", 41002, is_open=False)],
    ),
    "relisten": lambda: one_process("relisten", [41000], []),
    "serial": lambda: one_process("serial", [41000], [41002, 41004]),
    "fork": fork_with_zombie,
    "thread": lambda: threads("thread", 3),
    "prefork": prefork,
    "threadpool": lambda: threads("threadpool", 4, [42100]),
    "event": lambda: one_process("event", [41000, 41002, 41004], []),
}


def history_then(make):
    """A minute of samples (one every 6 s) ending with the scene, for the sparklines."""

    async def run(pilot) -> None:
        final = make()
        empty = LabUpdate(
            **{
                **final._asdict(),
                "events": (),
                "snapshot": Snapshot(
                    time=0.0, root_pid=ROOT, processes=final.snapshot.processes[:1], listen=final.snapshot.listen
                ),
            }
        )
        for step in range(9):
            snap = Snapshot(**{**empty.snapshot._asdict(), "time": T0 - 24 + 6 * step})
            await drawn_after(pilot, pilot.app.lab, LabUpdate(**{**empty._asdict(), "snapshot": snap}))
        await drawn_after(pilot, pilot.app.lab, final)

    return run


@pytest.mark.parametrize("model", list(SCENES))
def test_each_model_screen(snap_compare, model):
    assert snap_compare(
        SvcvizApp(ReplayLab(), picture=False), terminal_size=SIZE, run_before=history_then(SCENES[model])
    )


def test_orphans_adopted_after_kill(snap_compare):
    assert snap_compare(
        SvcvizApp(ReplayLab(), picture=False), terminal_size=SIZE, run_before=history_then(fork_adopted)
    )


def test_help_screen(snap_compare):
    assert snap_compare(
        SvcvizApp(ReplayLab(), picture=False),
        terminal_size=SIZE,
        press=["question_mark"],
        run_before=history_then(SCENES["serial"]),
    )


def test_model_picker(snap_compare):
    assert snap_compare(
        SvcvizApp(ReplayLab(), picture=False),
        terminal_size=SIZE,
        press=["m"],
        run_before=history_then(SCENES["serial"]),
    )


def test_too_small_terminal_gets_a_notice(snap_compare):
    assert snap_compare(
        SvcvizApp(ReplayLab(), picture=False), terminal_size=(60, 16), run_before=history_then(SCENES["fork"])
    )


@pytest.mark.parametrize("make", [prefork_threads, threads_200], ids=["prefork-4x30", "threads-200"])
def test_big_servers_grouped_at_160x45(snap_compare, make):
    """Every worker of a 4x30 prefork server, every thread group of a 200-thread one."""
    assert snap_compare(
        SvcvizApp(ReplayLab(controls_server=False), picture=False), terminal_size=(160, 45), run_before=shown(make)
    )


def shown(make):
    async def run(pilot) -> None:
        await drawn_after(pilot, pilot.app.lab, make())

    return run
