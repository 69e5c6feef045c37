"""Hand-made lab states for the picture's tests: what the observer would see of each model."""

from __future__ import annotations

from svcviz.clients import ClientView
from svcviz.observe.snapshot import Connection, Fd, ListenSocket, Process, Snapshot, Thread

T0 = 1_800_000_000.0
PORT = 6168
ROOT = 4242
SERVER = f"127.0.0.1:{PORT}"
LISTEN_FD = Fd(3, "listen", local=SERVER)


def client(id: int, state: str, port: int | None, is_open: bool = True) -> ClientView:
    return ClientView(id, "interactive", state, is_open, port, 0.2, 0, 0, None, None, T0)


def conn_fd(fd: int, port: int, tcp: str = "ESTABLISHED") -> Fd:
    return Fd(fd, "conn", peer=f"127.0.0.1:{port}", local=SERVER, tcp_state=tcp)


def accepted(port: int, pid: int, fd: int, tid: int | None = None) -> Connection:
    return Connection(f"127.0.0.1:{port}", SERVER, "accepted", "ESTABLISHED", pid, fd, tid)


def queued(port: int) -> Connection:
    return Connection(f"127.0.0.1:{port}", SERVER, "queued", "ESTABLISHED")


def proc(pid: int, ppid: int = ROOT, fds=(LISTEN_FD,), state: str = "S", tids=(), adopted: bool = False) -> Process:
    threads = () if state == "Z" else tuple(Thread(t, "S") for t in (tids or (pid,)))
    return Process(pid, ppid, "svcviz", state, threads, fds=() if state == "Z" else tuple(fds), adopted=adopted)


def snap(processes, connections=(), queue: int | None = None, backlog: int = 8, listening: bool = True) -> Snapshot:
    connections = tuple(connections)
    if queue is None:
        queue = sum(c.state == "queued" for c in connections)
    listen = (ListenSocket(SERVER, PORT, queue, backlog, ROOT, 3),) if listening else ()
    return Snapshot(T0, ROOT, listen, tuple(processes), connections)


def serial():
    """One client served, two waiting in the accept queue."""
    ports = [41000, 41002, 41004]
    s = snap(
        [proc(ROOT, 1, (LISTEN_FD, conn_fd(4, ports[0])))],
        [accepted(ports[0], ROOT, 4), queued(ports[1]), queued(ports[2])],
    )
    return s, [client(1, "served", ports[0]), client(2, "waiting", ports[1]), client(3, "waiting", ports[2])], "serial"


def fork_zombie():
    s = snap(
        [proc(ROOT, 1), proc(4250, fds=(LISTEN_FD, conn_fd(4, 40002))), proc(4251, state="Z")],
        [accepted(40002, 4250, 4)],
    )
    return s, [client(1, "closed", 40000, is_open=False), client(2, "served", 40002)], "fork"


def fork_leak(count: int = 3):
    """--leak-fd: the parent keeps every connection; each child inherits the ones before its own."""
    ports = [40000 + 2 * i for i in range(count)]
    parent = proc(ROOT, 1, (LISTEN_FD, *(conn_fd(4 + i, p) for i, p in enumerate(ports))))
    children = [
        proc(4250 + i, fds=(LISTEN_FD, *(conn_fd(4 + j, ports[j]) for j in range(i + 1)))) for i in range(count)
    ]
    conns = [accepted(p, 4250 + i, 4 + i) for i, p in enumerate(ports)]
    return snap([parent, *children], conns), [client(i + 1, "served", p) for i, p in enumerate(ports)], "fork"


def thread(count: int = 3):
    tids = [ROOT + 1 + i for i in range(count)]
    ports = [42000 + 2 * i for i in range(count)]
    process = proc(ROOT, 1, (LISTEN_FD, *(conn_fd(4 + i, p) for i, p in enumerate(ports))), tids=(ROOT, *tids))
    conns = [accepted(p, ROOT, 4 + i, tids[i]) for i, p in enumerate(ports)]
    return snap([process], conns), [client(i + 1, "served", p) for i, p in enumerate(ports)], "thread"


def prefork(workers: int = 4):
    """Five clients, four workers: the fifth waits in the queue."""
    ports = [43000 + 2 * i for i in range(workers + 1)]
    procs = [proc(ROOT, 1)] + [proc(ROOT + 1 + i, fds=(LISTEN_FD, conn_fd(4, ports[i]))) for i in range(workers)]
    conns = [accepted(ports[i], ROOT + 1 + i, 4) for i in range(workers)] + [queued(ports[-1])]
    clients = [client(i + 1, "served", p) for i, p in enumerate(ports[:-1])] + [
        client(workers + 1, "waiting", ports[-1])
    ]
    return snap(procs, conns), clients, "prefork"


def event(count: int = 10):
    ports = [44000 + 2 * i for i in range(count)]
    process = proc(ROOT, 1, (LISTEN_FD, *(conn_fd(4 + i, p) for i, p in enumerate(ports))))
    conns = [accepted(p, ROOT, 4 + i) for i, p in enumerate(ports)]
    return snap([process], conns), [client(i + 1, "idle", p) for i, p in enumerate(ports)], "event"


def crowd(children: int = 200, clients: int = 1000):
    """The benchmark's lab: 200 children serving one client each, the rest in the queue."""
    ports = [20000 + i for i in range(clients)]
    procs = [proc(ROOT, 1)] + [proc(5000 + i, fds=(LISTEN_FD, conn_fd(4, ports[i]))) for i in range(children)]
    conns = [accepted(ports[i], 5000 + i, 4) for i in range(children)] + [queued(p) for p in ports[children:]]
    views = [client(i + 1, "served" if i < children else "waiting", p) for i, p in enumerate(ports)]
    return snap(procs, conns, backlog=1024), views, "fork"


SCENES = {
    "serial": serial,
    "fork-zombie": fork_zombie,
    "fork-leak-fd": fork_leak,
    "thread": thread,
    "prefork": prefork,
    "event": event,
    "crowd": crowd,
}
