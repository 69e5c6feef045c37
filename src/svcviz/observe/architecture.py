"""The server's architecture, named from kernel facts only, with the facts as evidence.

A pure function of a Snapshot: who holds the listening sockets, who holds each connection,
how many threads each process has and what each one waits in, and epoll instances. The
vocabulary (DESIGN.md, README "Architectures"):

    serial · fork-per-connection · thread-per-connection · prefork · thread-pool ·
    event-loop · prefork+event-loop · prefork+thread-pool · unknown

The rules, in order:
1. Several processes hold the listener and only the oldest waits on it, the others each
   holding one connection: fork-per-connection (the children inherited the listener).
   A single holder whose connections are held by its children: fork-per-connection too.
2. Several processes wait on the listener: prefork, and each worker's own shape says
   which: +event-loop (one thread holds connections no thread reads by itself, in
   epoll_wait, or several at once), +thread-pool (several threads serve), else prefork.
3. One process: event-loop (as above), thread-pool (several threads accept on the one
   listener, or spare threads wait while connections are served, or connections wait in
   the queue while every thread serves and none accepts), thread-per-connection (the main
   thread accepts, every other thread serves its own connection), serial (one thread, at
   most one connection at a time).
4. Otherwise unknown, saying what would tell (usually: hold a few connections).
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from svcviz.observe import syscalls
from svcviz.observe.snapshot import Process, Snapshot, Thread
from svcviz.observe.waits import wait_text

IDLE_WAITS = frozenset({"futex", "futex_waitv", "pause", "rt_sigsuspend", "rt_sigtimedwait", "nanosleep"})
HOLD_SOME = "hold a few connections (e.g. `svcviz blast 3 --hold 30`) to tell"


class Architecture(NamedTuple):
    name: str
    evidence: tuple[str, ...]
    reuseport: bool = False


class _Shape:
    """One process, as far as its architecture goes. One per process, compared by identity
    (field equality would walk every fd and thread)."""

    __slots__ = (
        "accepting",
        "conn_fds",
        "conns",
        "event_waiting",
        "idle",
        "listen_fds",
        "process",
        "serving",
        "unreadable",
    )

    def __init__(self, process: Process, conns: int, listen_fds: frozenset[int], conn_fds: frozenset[int]) -> None:
        self.process = process
        self.conns = conns  # connections this process serves (the snapshot's owner)
        self.listen_fds = listen_fds
        self.conn_fds = conn_fds
        self.accepting: list[Thread] = []  # in accept() on a listener
        self.event_waiting: list[Thread] = []  # epoll/poll/select while holding a listener or conns
        self.serving: list[Thread] = []  # blocked on one connection's fd (or in poll, which has none)
        self.idle: list[Thread] = []  # futex, pause, sleeps: parked
        self.unreadable = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def threads(self) -> int:
        return len(self.process.threads)

    @property
    def waits_for_connections(self) -> bool:
        return bool(self.listen_fds) and bool(self.accepting or self.event_waiting)

    def describe_waits(self) -> str:
        counts = Counter(wait_text(t, self.process) for t in self.process.threads)
        return ", ".join(f"{n}× {w}" if n > 1 else w for w, n in counts.most_common(4))


def _shape(process: Process, conns: int) -> _Shape:
    listen_fds = frozenset(fd.fd for fd in process.fds if fd.kind == "listen")
    conn_fds = frozenset(fd.fd for fd in process.fds if fd.kind == "conn")
    shape = _Shape(process, conns, listen_fds, conn_fds)
    for thread in process.threads:
        call = thread.syscall
        if not thread.syscall_readable:
            shape.unreadable = True
        elif call in syscalls.ACCEPTS and (thread.syscall_fd in listen_fds or thread.syscall_fd is None):
            shape.accepting.append(thread)
        elif call in syscalls.RECEIVES | syscalls.SENDS and thread.syscall_fd in conn_fds:
            shape.serving.append(thread)
        elif call in syscalls.EVENT_WAITS and call.startswith("epoll"):
            if listen_fds or conn_fds:
                shape.event_waiting.append(thread)
        elif call in syscalls.EVENT_WAITS:  # poll/select: which fds is not in /proc
            if conn_fds and process.threads[0] is not thread:
                shape.serving.append(thread)  # a worker thread's read with a timeout (APR, Python's socket timeouts)
            elif listen_fds or conn_fds:
                shape.event_waiting.append(thread)
        elif call in IDLE_WAITS:
            shape.idle.append(thread)
    return shape


def _event_loop(shape: _Shape) -> str | None:
    """Why this process is an event loop, or None: a thread in an event wait while the
    process holds connections that no thread of their own reads."""
    unread = shape.conns - len(shape.serving)
    if not shape.event_waiting or unread < 1:
        return None
    waiter = shape.event_waiting[0]
    if waiter.syscall and waiter.syscall.startswith("epoll"):
        return (
            f"pid {shape.pid}: thread {waiter.tid} waits in {wait_text(waiter, shape.process)} "
            f"while the process holds {_n(shape.conns, 'connection')} no thread reads on its own"
        )
    if unread >= 2:
        return (
            f"pid {shape.pid}: thread {waiter.tid} waits in {waiter.syscall} "
            f"over {_n(shape.conns, 'connection')} at once"
        )
    return None


def _pool(shape: _Shape, queued: int) -> str | None:
    """Why this process is a thread pool, or None."""
    pid = shape.pid
    if len(shape.accepting) >= 2:
        return f"pid {pid}: {len(shape.accepting)} threads wait in accept() on the same listening socket"
    if shape.serving and shape.threads >= 2:
        spare = [t for t in shape.idle if t.tid != pid]
        if spare:
            return (
                f"pid {pid}: threads serving connections: {len(shape.serving)}; "
                f"threads waiting for work ({spare[0].syscall}): {len(spare)}"
            )
        if shape.accepting and all(t.tid != pid for t in shape.accepting):
            return f"pid {pid}: a worker thread, not the main one, accepts; threads serving: {len(shape.serving)}"
        if queued and not shape.accepting and not shape.event_waiting:
            return (
                f"pid {pid}: every thread serves ({len(shape.serving)}) and none accepts, "
                f"while {_n(queued, 'connection')} wait in the accept queue"
            )
    return None


def judge(snapshot: Snapshot) -> Architecture:
    """The architecture of the server in this snapshot, with the facts that tell."""
    reuseport = snapshot.reuseport
    name, evidence = _judge(snapshot)
    if reuseport:
        ports = Counter(sock.addr for sock in snapshot.listen)
        addr, n = ports.most_common(1)[0]
        evidence.append(f"{n} listening sockets share {addr} (SO_REUSEPORT), each its own queue")
        polled = [f"fd {sock.fd}: pid {', '.join(map(str, sock.pollers))}" for sock in snapshot.listen if sock.pollers]
        if polled:
            evidence.append("whose epoll watches each socket: " + "; ".join(polled))
    return Architecture(name, tuple(evidence), reuseport)


def _judge(snapshot: Snapshot) -> tuple[str, list[str]]:
    live = [p for p in snapshot.processes if not p.zombie]
    if not live:
        return "unknown", ["no live process in the tree"]
    unreadable = [p.pid for p in live if not p.readable]
    if unreadable:
        return "unknown", [f"the fds of pid {', '.join(map(str, unreadable))} cannot be read (run as root)"]
    owners = Counter(c.pid for c in snapshot.connections if c.state == "accepted" and c.pid is not None)
    queued = sum(1 for c in snapshot.connections if c.state == "queued")
    shapes = {p.pid: _shape(p, owners.get(p.pid, 0)) for p in live}
    blind = [s.pid for s in shapes.values() if s.unreadable]
    if blind:
        return "unknown", [f"what the threads of pid {', '.join(map(str, blind))} wait in cannot be read (run as root)"]
    holders = [s for s in shapes.values() if s.listen_fds]
    if not holders:
        return _no_listener(list(shapes.values()), snapshot)
    holder_pids = {s.pid for s in holders}
    workers = [s for s in holders if s.process.ppid in holder_pids]
    serving_children = [s for s in shapes.values() if s.pid not in holder_pids and s.conns]

    if len(holders) == 1 or not workers:
        top = holders[0] if len(holders) == 1 else min(holders, key=lambda s: s.pid)
        if serving_children and not top.conns:
            return _fork(top, serving_children, inherited=False)
        if len(holders) == 1:
            return _one_process(top, queued)
        workers = holders  # several unrelated processes share the port (reuseport)
    worker_pids = {w.pid for w in workers}
    parents = [s for s in holders if s.pid not in worker_pids]
    if (
        parents
        and any(p.waits_for_connections for p in parents)
        and not any(w.waits_for_connections for w in workers)
        and all(w.conns <= 1 for w in workers)
        and any(w.conns for w in workers)
    ):
        return _fork(parents[0], [w for w in workers if w.conns], inherited=True)
    return _prefork(workers, parents)


def _fork(parent: _Shape, children: list[_Shape], inherited: bool) -> tuple[str, list[str]]:
    if any(c.conns > 1 for c in children):
        many = max(children, key=lambda c: c.conns)
        return "unknown", [
            f"pid {parent.pid} holds the listener; its child {many.pid} serves {many.conns} connections",
            "neither one child per connection nor workers sharing the listener",
        ]
    evidence = [f"pid {parent.pid} holds the listening socket and waits in {parent.describe_waits()}"]
    pids = ", ".join(str(c.pid) for c in children[:6]) + (" …" if len(children) > 6 else "")
    evidence.append(f"each of {_n(len(children), 'connection')} is held by a child of its own (pid {pids})")
    if inherited:
        evidence.append("the children inherited the listener, and none waits on it")
    return "fork-per-connection", evidence


def _prefork(workers: list[_Shape], parents: list[_Shape]) -> tuple[str, list[str]]:
    waiting = [w for w in workers if w.waits_for_connections]
    evidence = [f"{_n(len(workers), 'process')} share the listening socket"]
    if parents:
        evidence[0] += f", children of pid {parents[0].pid} ({parents[0].describe_waits()})"
    if waiting:
        evidence.append(f"{_n(len(waiting), 'worker')} wait{'s' if len(waiting) == 1 else ''} on it")
    loops = [reason for w in workers if (reason := _event_loop(w))]
    pools = [reason for w in workers if (reason := _pool(w, 0))]
    threaded = [w for w in workers if w.threads >= 2 and (w.serving or len(w.accepting) >= 2)]
    if pools or (threaded and not loops):
        evidence += pools[:2] or [
            f"pid {threaded[0].pid}: {threaded[0].threads} threads, {threaded[0].describe_waits()}"
        ]
        return "prefork+thread-pool", evidence
    if loops:
        return "prefork+event-loop", evidence + loops[:2]
    most = max(w.conns for w in workers)
    if most > 1:
        return "unknown", [*evidence, f"a worker serves {most} connections without an event wait or threads"]
    served = sum(w.conns for w in workers)
    if served:
        evidence.append(f"each worker serves at most one connection at a time ({served} served now)")
    else:
        evidence.append(f"no connection is served: {HOLD_SOME} whether a worker serves many at once")
    return "prefork", evidence


def _one_process(shape: _Shape, queued: int) -> tuple[str, list[str]]:
    evidence = [f"one process (pid {shape.pid}) holds the listening socket: {shape.describe_waits()}"]
    loop = _event_loop(shape)
    if loop:
        return "event-loop", [*evidence, loop]
    pool = _pool(shape, queued)
    if pool:
        return "thread-pool", [*evidence, pool]
    if shape.threads >= 2 and shape.serving:
        main = shape.process.threads[0]
        own = len(shape.serving) >= shape.conns
        if own and (not shape.accepting or shape.accepting == [main] or shape.event_waiting == [main]):
            return "thread-per-connection", [
                *evidence,
                f"each of {_n(shape.conns, 'connection')} is served by a thread of its own; the main thread accepts",
            ]
    if shape.threads == 1:
        if shape.conns > 1:
            return "unknown", [*evidence, f"one thread holds {shape.conns} connections, yet waits in no event wait"]
        if shape.conns or queued:
            what = "serves one connection" if shape.conns else "serves none"
            rest = f"{queued} more wait{'s' if queued == 1 else ''}" if queued else "none waits"
            return "serial", [
                *evidence,
                f"one thread {what}; {rest} in the accept queue",
            ]
    return "unknown", [*evidence, HOLD_SOME]


def _no_listener(shapes: list[_Shape], snapshot: Snapshot) -> tuple[str, list[str]]:
    """accept-once and relisten close the listener while they serve."""
    evidence = ["no socket is listening now (closed, or not yet opened again)"]
    if len(shapes) == 1 and shapes[0].threads == 1 and shapes[0].conns <= 1:
        served = "serves one connection" if shapes[0].conns else "serves none"
        return "serial", [*evidence, f"one process, one thread (pid {shapes[0].pid}), {served}"]
    return "unknown", evidence


def _n(count: int, word: str) -> str:
    if count == 1:
        return f"1 {word}"
    plural = word + ("es" if word.endswith("ss") else "s")
    return f"{count} {plural}"
