"""The architecture named from a snapshot: hand-made snapshots for each rule, then our nine
models live, under a few held connections."""

from __future__ import annotations

import socket

import pytest

from conftest import wait_until
from kernel import connect
from svcviz.observe.architecture import judge
from svcviz.observe.observer import Observer
from svcviz.observe.snapshot import Connection, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.observe.waits import wait_text

LISTEN = Fd(3, "listen", None, "127.0.0.1:80", 100, "LISTEN", "socket:[100]")
EPOLL = Fd(5, "other", link="anon_inode:[eventpoll]")


def conn(fd: int, port: int) -> Fd:
    return Fd(fd, "conn", f"127.0.0.1:{port}", "127.0.0.1:80", 1000 + port, "ESTABLISHED", f"socket:[{1000 + port}]")


def thread(tid: int, call: str | None, fd: int | None = None, state: str = "S") -> Thread:
    return Thread(tid, state, "srv", call, fd, 0 if call else None)


def proc(pid: int, ppid: int, threads: list[Thread], fds: list[Fd]) -> Process:
    return Process(pid, ppid, "srv", "S", tuple(threads), fds=tuple(fds))


def snap(processes: list[Process], queued: int = 0, listeners: int = 1) -> Snapshot:
    holders = tuple(p.pid for p in processes if any(fd.kind == "listen" for fd in p.fds))
    listen = tuple(
        ListenSocket("127.0.0.1:80", 80, queued, 128, holders[0] if holders else None, 3, 100 + i, holders)
        for i in range(listeners)
    )
    conns = [
        Connection(fd.peer, fd.local, "accepted", "ESTABLISHED", p.pid, fd.fd)
        for p in processes
        for fd in p.fds
        if fd.kind == "conn"
    ]
    conns += [Connection(f"127.0.0.1:{9000 + i}", "127.0.0.1:80", "queued", "ESTABLISHED") for i in range(queued)]
    return Snapshot(1.0, processes[0].pid, listen, tuple(processes), tuple(conns))


def test_serial_one_thread_one_connection_the_rest_queued():
    s = snap([proc(10, 1, [thread(10, "recvfrom", 4)], [LISTEN, conn(4, 5000)])], queued=2)
    arch = judge(s)
    assert arch.name == "serial"
    assert any("one thread serves one connection; 2 more wait in the accept queue" in e for e in arch.evidence)


def test_idle_single_process_is_unknown_and_says_what_would_tell():
    arch = judge(snap([proc(10, 1, [thread(10, "accept4", 3)], [LISTEN])]))
    assert arch.name == "unknown"
    assert "hold a few connections" in arch.evidence[-1]


def test_fork_per_connection_children_inherit_the_listener():
    parent = proc(10, 1, [thread(10, "accept4", 3)], [LISTEN])
    kids = [proc(11 + i, 10, [thread(11 + i, "recvfrom", 4)], [LISTEN, conn(4, 5000 + i)]) for i in range(3)]
    arch = judge(snap([parent, *kids]))
    assert arch.name == "fork-per-connection"
    assert "each of 3 connections is held by a child of its own (pid 11, 12, 13)" in arch.evidence


def test_fork_per_connection_children_without_the_listener():  # PostgreSQL
    parent = proc(10, 1, [thread(10, "select")], [LISTEN])
    helper = proc(11, 10, [thread(11, "epoll_wait", 5)], [EPOLL])
    kids = [proc(12 + i, 10, [thread(12 + i, "epoll_wait", 5)], [EPOLL, conn(9, 5000 + i)]) for i in range(2)]
    assert judge(snap([parent, helper, *kids])).name == "fork-per-connection"


def test_prefork_workers_accept_and_serve_one_each():
    parent = proc(10, 1, [thread(10, "wait4")], [LISTEN])
    busy = [proc(11 + i, 10, [thread(11 + i, "recvfrom", 4)], [LISTEN, conn(4, 5000 + i)]) for i in range(2)]
    idle = [proc(13 + i, 10, [thread(13 + i, "accept4", 3)], [LISTEN]) for i in range(2)]
    arch = judge(snap([parent, *busy, *idle]))
    assert arch.name == "prefork"
    assert arch.evidence[0].startswith("4 processes share the listening socket, children of pid 10 (wait4)")


def test_prefork_without_connections_is_still_prefork():
    parent = proc(10, 1, [thread(10, "wait4")], [LISTEN])
    idle = [proc(11 + i, 10, [thread(11 + i, "accept4", 3)], [LISTEN]) for i in range(3)]
    arch = judge(snap([parent, *idle]))
    assert arch.name == "prefork"
    assert "hold a few connections" in arch.evidence[-1]


def test_prefork_event_loop_nginx_shape_with_reuseport():
    master = proc(10, 1, [thread(10, "rt_sigsuspend")], [LISTEN])
    workers = [
        proc(11 + i, 10, [thread(11 + i, "epoll_wait", 5)], [LISTEN, EPOLL, conn(7, 5000 + i), conn(8, 6000 + i)])
        for i in range(2)
    ]
    arch = judge(snap([master, *workers], listeners=2))
    assert arch.name == "prefork+event-loop"
    assert arch.reuseport
    assert "2 listening sockets share 127.0.0.1:80 (SO_REUSEPORT), each its own queue" in arch.evidence


def test_prefork_thread_pool_apache_event_shape():
    master = proc(10, 1, [thread(10, "select")], [LISTEN])
    workers = []
    for i in range(2):
        pid = 20 + 10 * i
        threads = [
            thread(pid, "epoll_wait", 5),
            thread(pid + 1, "poll"),
            *[thread(pid + 2 + k, "futex") for k in range(5)],
        ]
        workers.append(proc(pid, 10, threads, [LISTEN, EPOLL, conn(9, 5000 + i)]))
    assert judge(snap([master, *workers])).name == "prefork+thread-pool"


def test_event_loop_one_thread_many_connections():
    fds = [LISTEN, EPOLL, *[conn(6 + i, 5000 + i) for i in range(3)]]
    arch = judge(snap([proc(10, 1, [thread(10, "epoll_wait", 5)], fds)]))
    assert arch.name == "event-loop"
    assert "waits in epoll_wait(5 epoll) while the process holds 3 connections" in arch.evidence[1]


def test_event_loop_with_helper_threads_is_not_a_pool():  # node, Redis
    threads = [thread(10, "epoll_pwait", 5), *[thread(11 + k, "futex") for k in range(6)]]
    fds = [LISTEN, EPOLL, conn(20, 5000), conn(21, 5001)]
    assert judge(snap([proc(10, 1, threads, fds)])).name == "event-loop"


def test_thread_per_connection_main_accepts():
    threads = [thread(10, "accept4", 3), thread(11, "recvfrom", 4), thread(12, "recvfrom", 5)]
    arch = judge(snap([proc(10, 1, threads, [LISTEN, conn(4, 5000), conn(5, 5001)])]))
    assert arch.name == "thread-per-connection"


def test_thread_pool_several_threads_accept():
    threads = [thread(10, "pause"), thread(11, "recvfrom", 4), thread(12, "accept4", 3), thread(13, "accept4", 3)]
    assert judge(snap([proc(10, 1, threads, [LISTEN, conn(4, 5000)])])).name == "thread-pool"


def test_thread_pool_all_busy_and_a_queue():
    threads = [thread(10, "pause"), thread(11, "recvfrom", 4), thread(12, "recvfrom", 5)]
    s = snap([proc(10, 1, threads, [LISTEN, conn(4, 5000), conn(5, 5001)])], queued=3)
    arch = judge(s)
    assert arch.name == "thread-pool"
    assert "3 connections wait in the accept queue" in arch.evidence[-1]


def test_closed_listener_one_thread_is_serial():  # accept-once, relisten while serving
    s = snap([proc(10, 1, [thread(10, "recvfrom", 4)], [conn(4, 5000)])])
    assert judge(s).name == "serial"


def test_unreadable_waits_are_not_guessed():
    blind = Thread(10, "S", "srv", syscall_readable=False)
    arch = judge(snap([proc(10, 1, [blind], [LISTEN, conn(4, 5000)])]))
    assert arch.name == "unknown"
    assert "cannot be read" in arch.evidence[0]


def test_wait_text_names_the_fd():
    p = proc(10, 1, [], [LISTEN, conn(4, 5000), EPOLL, Fd(7, "other", link="pipe:[9]")])
    assert wait_text(thread(10, "accept4", 3), p) == "accept4(3 listen)"
    assert wait_text(thread(10, "read", 4), p) == "read(4 <- 127.0.0.1:5000)"
    assert wait_text(thread(10, "epoll_wait", 5), p) == "epoll_wait(5 epoll)"
    assert wait_text(thread(10, "read", 7), p) == "read(7 pipe)"
    assert wait_text(thread(10, "futex"), p) == "futex"
    assert wait_text(thread(10, None, state="R"), p) == "running"
    assert wait_text(Thread(10, "S", "x", None, None, 999), p) == "syscall 999"
    assert wait_text(Thread(10, "S", "x", syscall_readable=False), p) == "unreadable"


# -- our models, live ---------------------------------------------------------------

MODELS = {
    "serial": "serial",
    "listen-only": "serial",
    "accept-once": "serial",
    "relisten": "serial",
    "fork": "fork-per-connection",
    "thread": "thread-per-connection",
    "prefork": "prefork",
    "threadpool": "thread-pool",
    "event": "event-loop",
}


@pytest.mark.parametrize("model", list(MODELS))
def test_each_model_named_under_held_connections(model, serve):
    server = serve(model)
    held: list[socket.socket] = []
    try:
        with Observer(pid=server.pid) as observer:  # before the clients: accept-once stops listening
            for _ in range(3):
                try:
                    held.append(connect(server.port))
                except (ConnectionRefusedError, ConnectionResetError):
                    # accept-once, relisten: nobody listens while one is served (a handshake
                    # queued on the socket they close is reset)
                    assert model in ("accept-once", "relisten")

            # settled: the three handshakes done and each one where the model puts it
            def settled():
                snapshot = observer.sample()
                return snapshot if judge(snapshot).name == MODELS[model] else None

            snapshot = wait_until(settled, timeout=8.0)
            last = observer.sample()
            assert snapshot, f"{model}: {judge(last)}"
            assert judge(observer.sample()).name == MODELS[model]  # and it stays so
            for process in snapshot.processes:
                for t in process.threads:
                    assert t.syscall_readable
    finally:
        for sock in held:
            sock.close()


def test_refused_waits_are_said_not_guessed(serve, monkeypatch):
    """The kernel refuses /proc/PID/task/TID/syscall without ptrace rights over the thread
    (another user, or Yama's ptrace_scope, while the fds stay readable). As root on a
    machine without Yama that cannot be made to happen, so the refusal is the one raised."""
    server = serve("threadpool")
    with connect(server.port), Observer(pid=server.pid) as observer:

        def refuse(pid: int, tid: int) -> str:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("svcviz.observe.procfs.read_syscall", refuse)
        snapshot = observer.sample()
        threads = snapshot.process(server.pid).threads
        assert all(not t.syscall_readable and t.syscall is None for t in threads if t.state != "R")
        assert f"pid {server.pid} thread waits: permission denied" in snapshot.unreadable
        arch = judge(snapshot)
        assert arch.name == "unknown"
        assert arch.evidence == (f"what the threads of pid {server.pid} wait in cannot be read (run as root)",)
        assert {wait_text(t, snapshot.process(server.pid)) for t in threads} <= {"unreadable", "running"}
