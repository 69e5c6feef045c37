"""Hand-made snapshots of big servers for the dashboard's tests: a prefork server of 4
workers x 30 threads, a 200-thread thread-per-connection server. Shaped as the observer
makes them (syscall names and fd arguments as /proc/PID/task/TID/syscall gives them)."""

from __future__ import annotations

from svcviz.clients import ClientView
from svcviz.lab import LabUpdate
from svcviz.observe.snapshot import Connection, Counters, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.servers.config import ServerConfig

T0 = 1_800_000_000.0
PORT = 8000
ROOT = 5000
SERVER = f"127.0.0.1:{PORT}"
LISTEN = Fd(3, "listen", local=SERVER, link="socket:[100]")


def conn(fd: int, port: int) -> Fd:
    return Fd(fd, "conn", peer=f"127.0.0.1:{port}", local=SERVER, tcp_state="ESTABLISHED", link=f"socket:[{port}]")


def client(id: int, port: int) -> ClientView:
    return ClientView(id, "interactive", "idle", True, port, 0.2, 0, 0, None, None, T0)


def update(processes, connections, clients, listen=None, model: str = "watch") -> LabUpdate:
    snapshot = Snapshot(
        time=T0,
        root_pid=ROOT,
        listen=listen or (ListenSocket(SERVER, PORT, 0, 128, ROOT, 3, holders=tuple(p.pid for p in processes)),),
        processes=tuple(processes),
        connections=tuple(connections),
        counters=Counters(),
    )
    return LabUpdate(
        snapshot=snapshot,
        events=(),
        clients=tuple(clients),
        config=ServerConfig(model, port=PORT),
        server_pid=ROOT,
        status="watching",
        cap_hit=None,
        client_protocol="http (port 8000)",
    )


def prefork_threads(workers: int = 4, threads: int = 30) -> LabUpdate:
    """gunicorn gthread's shape: a master, workers that each poll the listener in their main
    thread while a pool of threads waits on a futex and a few read a connection each."""
    master = Process(
        ROOT, 1, "gunicorn", "S", (Thread(ROOT, "S", "gunicorn", "select"),), fds=(LISTEN,),
        title="gunicorn: master [app:app]", user="www-data",
    )  # fmt: skip
    processes, conns, clients = [master], [], []
    for w in range(workers):
        pid = ROOT + 100 * (w + 1)
        eventpoll = Fd(5, "other", link="anon_inode:[eventpoll]")
        pipe = Fd(6, "other", link="pipe:[900]")
        served = [(8 + i, 41000 + 10 * w + i) for i in range(2)]
        fds = (LISTEN, eventpoll, pipe, *(conn(fd, port) for fd, port in served))
        team = [Thread(pid, "S", "gunicorn", "epoll_wait", 5)]
        team += [Thread(pid + 1 + i, "S", "gunicorn", "read", fd) for i, (fd, _) in enumerate(served)]
        team += [Thread(pid + 10 + i, "S", "gunicorn", "futex") for i in range(threads - len(team))]
        processes.append(
            Process(
                pid, ROOT, "gunicorn", "S", tuple(team), fds=fds, title="gunicorn: worker [app:app]", user="www-data"
            )
        )
        for i, (fd, port) in enumerate(served):
            conns.append(Connection(f"127.0.0.1:{port}", SERVER, "accepted", "ESTABLISHED", pid, fd, pid + 1 + i))
            clients.append(client(len(clients) + 1, port))
    return update(processes, conns, clients)


def threads_200(count: int = 200, serving: int = 150) -> LabUpdate:
    """A 200-thread pool under 150 clients: the main thread in accept, a thread per client
    in recvfrom on its connection, the spare ones parked on a futex, one running."""
    fds = [LISTEN, Fd(4, "other", link="/dev/null")]
    team = [Thread(ROOT, "S", "python3", "accept4", 3)]
    conns, clients = [], []
    for i in range(serving):
        fd, port, tid = 10 + i, 42000 + i, ROOT + 1 + i
        fds.append(conn(fd, port))
        team.append(Thread(tid, "S", "python3", "recvfrom", fd))
        conns.append(Connection(f"127.0.0.1:{port}", SERVER, "accepted", "ESTABLISHED", ROOT, fd, tid))
        clients.append(client(i + 1, port))
    team += [Thread(ROOT + 1 + serving + i, "S", "python3", "futex") for i in range(count - 2 - serving)]
    team.append(Thread(ROOT + 999, "R", "python3"))
    process = Process(
        ROOT, 1, "python3", "S", tuple(team), fds=tuple(fds), title="python3 -m http.server 8000", user="joe"
    )
    return update([process], conns, clients)


def many_processes(count: int = 60) -> LabUpdate:
    """A fork server holding count connections, a child each: more rows than any panel."""
    parent = Process(ROOT, 1, "svcviz", "S", (Thread(ROOT, "S", "svcviz", "accept4", 3),), fds=(LISTEN,))
    processes, conns, clients = [parent], [], []
    for i in range(count):
        pid, port = ROOT + 1 + i, 43000 + i
        processes.append(
            Process(pid, ROOT, "svcviz", "S", (Thread(pid, "S", "svcviz", "read", 4),), fds=(conn(4, port),))
        )
        conns.append(Connection(f"127.0.0.1:{port}", SERVER, "accepted", "ESTABLISHED", pid, 4))
        clients.append(client(i + 1, port))
    return update(processes, conns, clients)
