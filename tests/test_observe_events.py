"""diff(prev, next): every kind of event, from hand-made snapshots."""

from __future__ import annotations

from svcviz.observe.events import diff
from svcviz.observe.snapshot import Connection, Counters, Fd, ListenSocket, Process, Snapshot, Thread

LISTEN = ListenSocket("127.0.0.1:6168", 6168, 0, 8, 100, 3, inode=900)
LISTEN_FD = Fd(3, "listen", local="127.0.0.1:6168", inode=900)


def proc(
    pid: int, ppid: int = 100, state: str = "S", tids: tuple[int, ...] = (), fds=(LISTEN_FD,), adopted: bool = False
) -> Process:
    threads = tuple(Thread(tid, "S") for tid in (tids or (pid,)))
    return Process(
        pid, ppid, "server", state, threads if state != "Z" else (), fds=fds if state != "Z" else (), adopted=adopted
    )


NO_DROPS = Counters()


def snap(*processes: Process, connections=(), counters=NO_DROPS, time: float = 1.0, queue: int = 0) -> Snapshot:
    listen = (ListenSocket(LISTEN.addr, LISTEN.port, queue, LISTEN.backlog, LISTEN.pid, LISTEN.fd, LISTEN.inode),)
    return Snapshot(time, 100, listen, tuple(processes), tuple(connections), counters)


def kinds(events) -> list[str]:
    return [event.kind for event in events]


def conn(port: int, state: str, pid=None, fd=None, tcp="ESTABLISHED") -> Connection:
    return Connection(f"127.0.0.1:{port}", "127.0.0.1:6168", state, tcp, pid, fd)


def test_nothing_changed_nothing_said():
    a = snap(proc(100, 1), proc(101), connections=[conn(40000, "accepted", 101, 4)])
    assert diff(a, a) == []


def test_fork():
    events = diff(snap(proc(100, 1)), snap(proc(100, 1), proc(101), time=2.0))
    assert kinds(events) == ["fork"]
    assert events[0].text == "fork 101 (parent 100)"
    assert (events[0].pid, events[0].time) == (101, 2.0)


def test_exit_is_becoming_a_zombie_and_reaped_is_vanishing():
    alive, zombie, gone = snap(proc(100, 1), proc(101)), snap(proc(100, 1), proc(101, state="Z")), snap(proc(100, 1))
    exit_events = diff(alive, zombie)
    assert kinds(exit_events) == ["exit"] and "zombie" in exit_events[0].text
    assert kinds(diff(zombie, gone)) == ["reaped"]
    # exited and reaped between two samples (SIGCHLD ignored or reaped at once): both said
    assert kinds(diff(alive, gone)) == ["exit", "reaped"]


def test_adopted():
    before = snap(proc(100, 1), proc(101), proc(102, ppid=101))
    after = snap(proc(102, ppid=1, adopted=True))
    events = diff(before, after)
    assert kinds(events) == ["adopted", "exit", "reaped", "exit", "reaped"]
    assert events[0].text == "adopted 102: parent 101 gone, now a child of 1"


def test_thread_start_and_exit():
    one, three = snap(proc(100, 1, tids=(100,))), snap(proc(100, 1, tids=(100, 105, 106)))
    assert kinds(diff(one, three)) == ["thread_start", "thread_start"]
    assert diff(one, three)[0].text == "thread 105 started in 100 (3 threads)"
    assert kinds(diff(three, one)) == ["thread_exit", "thread_exit"]


def test_queued_then_accepted_then_closed():
    empty = snap(proc(100, 1))
    queued = snap(proc(100, 1), connections=[conn(40000, "queued")], queue=1)
    accepted = snap(proc(100, 1), proc(101), connections=[conn(40000, "accepted", 101, 4)])
    closing = snap(proc(100, 1), proc(101), connections=[conn(40000, "closing", 101, 4, tcp="CLOSE_WAIT")])
    assert [(e.kind, e.text) for e in diff(empty, queued)] == [
        ("queued", "queued 127.0.0.1:40000: queue 1 of backlog 8")
    ]
    accept = [e for e in diff(queued, accepted) if e.kind == "accept"]
    assert [(e.text, e.pid) for e in accept] == [("accepted 127.0.0.1:40000 by 100 fd 4; child 101 serves it", 101)]
    assert [(e.kind, e.text) for e in diff(accepted, closing)] == [("closed", "closed 127.0.0.1:40000 (CLOSE_WAIT)")]
    assert kinds(diff(accepted, snap(proc(100, 1), proc(101)))) == ["closed"]
    assert diff(closing, snap(proc(100, 1), proc(101))) == []  # a closing row going away is no news


def test_dropped_from_the_counters():
    calm = snap(proc(100, 1), counters=Counters(10, 12))
    dropping = snap(proc(100, 1), counters=Counters(13, 15, 3, 3))
    events = diff(calm, dropping)
    assert kinds(events) == ["dropped"]
    assert events[0].text.startswith("dropped 3 SYN(s)")
    assert diff(dropping, dropping) == []


def test_fd_open_and_close():
    conn_fd = Fd(4, "conn", peer="127.0.0.1:40000", local="127.0.0.1:6168", inode=901, tcp_state="ESTABLISHED")
    without = snap(proc(100, 1, fds=(LISTEN_FD,)))
    with_conn = snap(proc(100, 1, fds=(LISTEN_FD, conn_fd)))
    opened = diff(without, with_conn)
    assert [(e.kind, e.text) for e in opened] == [("fd_open", "fd 4 opened in 100 (connection from 127.0.0.1:40000)")]
    assert kinds(diff(with_conn, without)) == ["fd_close"]
    # the same number, another socket: the old one closed, a new one opened
    reused = snap(proc(100, 1, fds=(LISTEN_FD, Fd(4, "conn", peer="127.0.0.1:40001", inode=902))))
    assert kinds(diff(with_conn, reused)) == ["fd_close", "fd_open"]


def test_unreadable_fd_tables_are_not_news():
    readable = snap(proc(100, 1))
    hidden = Snapshot(1.0, 100, readable.listen, (Process(100, 1, "server", "S", (Thread(100, "S"),), readable=False),))
    assert diff(readable, hidden) == []


def test_a_forked_child_holding_a_new_connection_was_handed_it_by_the_parent_that_accepted():
    before = snap(proc(100, 1))
    after = snap(proc(100, 1), proc(101), connections=[conn(40000, "accepted", 101, 4)], time=2.0)
    assert [(e.kind, e.text) for e in diff(before, after)] == [
        ("accept", "accepted 127.0.0.1:40000 by 100 fd 4; child 101 serves it")
    ]


def test_a_pool_worker_that_was_there_before_accepts_itself():
    workers = (proc(100, 1), proc(101))
    after = snap(*workers, connections=[conn(40000, "accepted", 101, 4)], time=2.0)
    assert [e.text for e in diff(snap(*workers), after)] == ["accepted 127.0.0.1:40000 by 101 fd 4"]


def test_a_burst_queued_in_one_sample_is_one_line_with_one_queue_length():
    queued = snap(proc(100, 1), connections=[conn(40000 + i, "queued") for i in range(6)], queue=6)
    assert [(e.kind, e.text) for e in diff(snap(proc(100, 1)), queued)] == [
        ("queued", "queued 6 connections: queue 6 of backlog 8")
    ]


def test_reaped_says_by_whom():
    zombie = snap(proc(100, 1), proc(101, state="Z"))
    assert [e.text for e in diff(zombie, snap(proc(100, 1)))] == ["101 reaped by 100"]
