"""The lab's adaptive pace: what counts as a move, and what brings the full rate back."""

from __future__ import annotations

import time

from svcviz.lab import lab as lab_module
from svcviz.lab.lab import Lab, _moved
from svcviz.observe.snapshot import Connection, Counters, Fd, Process, Snapshot, Thread
from svcviz.servers.config import ServerConfig

ROOT = Process(pid=100, ppid=1, name="srv", state="S", fds=(Fd(3, "listen"),))
CHILD = Process(pid=101, ppid=100, name="srv", state="S", threads=(Thread(101, "S"), Thread(102, "S")))


QUIET = Counters()


def snap(*processes: Process, connections=(), counters=QUIET) -> Snapshot:
    return Snapshot(time=0.0, root_pid=100, processes=processes, connections=connections, counters=counters)


def test_nothing_changed_is_still() -> None:
    assert not _moved(snap(ROOT, CHILD), snap(ROOT, CHILD))


def test_running_and_sleeping_again_is_not_a_move() -> None:
    woken = Process(pid=101, ppid=100, name="srv", state="R", threads=(Thread(101, "R"), Thread(102, "S")))
    assert not _moved(snap(ROOT, CHILD), snap(ROOT, woken))


def test_the_machines_drop_counters_alone_are_not_a_move() -> None:
    """They count every socket of the machine; this server's drops fill its queue first."""
    assert not _moved(snap(ROOT, CHILD), snap(ROOT, CHILD, counters=Counters(listen_drops=9, drops_delta=9)))


def test_a_new_process_thread_fd_or_connection_is_a_move() -> None:
    before = snap(ROOT, CHILD)
    forked = Process(pid=102, ppid=100, name="srv", state="S")
    new_thread = Process(pid=101, ppid=100, name="srv", state="S", threads=(Thread(101, "S"), Thread(103, "S")))
    new_fd = Process(pid=100, ppid=1, name="srv", state="S", fds=(Fd(3, "listen"), Fd(4, "conn")))
    zombie = Process(pid=101, ppid=100, name="srv", state="Z", threads=CHILD.threads)
    connection = Connection("127.0.0.1:40000", "127.0.0.1:6168", "queued", "ESTABLISHED")
    assert _moved(before, snap(ROOT, CHILD, forked))
    assert _moved(before, snap(ROOT, new_thread))
    assert _moved(before, snap(new_fd, CHILD))
    assert _moved(before, snap(ROOT, zombie))
    assert _moved(before, snap(ROOT, CHILD, connections=(connection,)))
    assert _moved(None, before)


def test_a_control_call_ends_the_slow_pace_at_once() -> None:
    lab = Lab(ServerConfig("fork", port=0))
    assert not lab.still  # a new lab starts at the full rate
    lab._moved_at = time.monotonic() - lab_module.STILL_AFTER  # as if nothing had moved for a while
    assert lab.still
    lab.stir()
    assert not lab.still
    assert lab._stirred.is_set()  # the pause between two slow samples ends now
