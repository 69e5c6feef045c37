"""What the kernel shows of one server at one moment: plain, immutable data.

The observer fills these in; the dashboard, `svcviz watch` and the scenarios only read
them. Nothing here reads /proc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

# NamedTuples, not frozen dataclasses: as immutable, and made in a third of the time (an Fd:
# 0.75 against 2.3 us, timeit; the observer makes thousands a sample), and the classes cost a
# one-shot `svcviz watch --once` 0.25 ms each to define instead of 1.3, without the import
# of dataclasses (and with it inspect: 19 ms on this machine).
if TYPE_CHECKING:
    from typing import Literal

    FdKind = Literal["listen", "conn", "other"]
    ConnState = Literal["queued", "accepted", "syn_sent", "syn_recv", "deferred", "closing"]
    EventKind = Literal[
        "fork",
        "exit",
        "reaped",
        "adopted",
        "thread_start",
        "thread_exit",
        "accept",
        "queued",
        "dropped",
        "fd_open",
        "fd_close",
        "closed",
        # from the lab, not the kernel diff:
        "server",
        "client",
        "cap",
        "error",
        # from the dashboard's tracing (t):
        "syscall",
    ]

# What each state is called on a screen: the server's half-open row is not the client's
# dropped SYN, and a deferred accept (TCP_DEFER_ACCEPT) is neither.
CONN_STATE_WORDS: dict[str, str] = {
    "queued": "queued",
    "accepted": "accepted",
    "syn_sent": "knocking (SYN_SENT)",
    "syn_recv": "half-open (SYN_RECV)",
    "deferred": "waiting for first bytes",
    "closing": "closing",
}


# proc(5)'s state letters, in words: one table for every place that shows a state.
STATE_WORDS = {
    "R": "running",
    "S": "sleeping",
    "D": "disk wait",
    "Z": "zombie",
    "T": "stopped",
    "t": "traced",
    "X": "dead",
    "I": "idle",
}


class Fd(NamedTuple):
    fd: int
    kind: FdKind
    peer: str | None = None  # "127.0.0.1:40000" for a connection
    local: str | None = None  # "127.0.0.1:6168"
    inode: int | None = None  # socket inode, the key that joins fds to /proc/net/tcp rows
    tcp_state: str | None = None  # "ESTABLISHED", "CLOSE_WAIT", ... for a socket
    link: str = ""  # what readlink /proc/PID/fd/N says: "pipe:[123]", "anon_inode:[eventpoll]", "/dev/null"


class Thread(NamedTuple):
    tid: int
    state: str  # R, S, D, Z, T, ...
    name: str = ""  # comm: what the thread calls itself ("io_thd_1", "bio_close_file")
    syscall: str | None = None  # the call it is blocked in ("accept4", "epoll_wait"); None: running or unknown
    syscall_fd: int | None = None  # that call's fd argument, for a call that takes one
    syscall_nr: int | None = None  # the raw number, also for a call not in observe/syscalls.py
    syscall_readable: bool = True  # False: /proc/PID/task/TID/syscall refused (another user, not root)


class Process(NamedTuple):
    pid: int
    ppid: int
    name: str
    state: str  # R, S, D, Z (zombie), T (stopped), ...
    threads: tuple[Thread, ...] = ()
    rss: int = 0  # bytes
    fds: tuple[Fd, ...] = ()
    readable: bool = True  # False: another user's process we may not look into
    adopted: bool = False  # was in the tree, now reparented (its parent died)
    cmdline: str = ""
    title: str = ""  # the cmdline as the process set it now: "nginx: worker process" (controls escaped)
    user: str = ""  # the name of its real uid (the number when it has no name)

    @property
    def zombie(self) -> bool:
        return self.state == "Z"

    @property
    def thread_count(self) -> int:
        return len(self.threads) or (0 if self.zombie else 1)


class ListenSocket(NamedTuple):
    addr: str  # "127.0.0.1:6168" or "[::1]:6168"
    port: int
    queue: int  # completed connections waiting for accept()
    backlog: int  # what listen() was given (the queue holds backlog+1)
    pid: int | None  # the lowest pid holding it (the server's parent)
    fd: int | None
    inode: int = 0
    holders: tuple[int, ...] = ()  # every pid holding it, oldest first
    # Under SO_REUSEPORT every worker may hold every socket; the one that serves it is the one
    # whose epoll watches it (/proc/PID/fdinfo of its epoll fd). Read only then.
    pollers: tuple[int, ...] = ()
    uid: int | None = None  # its owner, as the kernel reports it (who made it)


class Connection(NamedTuple):
    client: str  # the client's address, "127.0.0.1:40000"
    server: str  # the server side, "127.0.0.1:6168"
    state: ConnState
    tcp_state: str  # the kernel's word for the server side
    pid: int | None = None  # owner of the server side; None while queued
    fd: int | None = None
    tid: int | None = None  # the thread serving it, when that can be known
    owner_unknown: bool = False  # a file holds it, but no process we may read (another user's)

    @property
    def client_port(self) -> int:
        return int(self.client.rsplit(":", 1)[1])


class Counters(NamedTuple):
    listen_overflows: int = 0  # system-wide totals from /proc/net/netstat
    listen_drops: int = 0
    overflows_delta: int = 0  # since the previous snapshot
    drops_delta: int = 0


class Snapshot(NamedTuple):
    time: float
    root_pid: int | None
    listen: tuple[ListenSocket, ...] = ()
    processes: tuple[Process, ...] = ()
    connections: tuple[Connection, ...] = ()
    counters: Counters = Counters()
    unreadable: tuple[str, ...] = ()  # what could not be read, e.g. "pid 1234 fds: permission denied"
    netns: int | None = None  # the server's network namespace (inode) when it is not ours
    netns_label: str | None = None  # its `ip netns` name, or its container's hostname
    notes: tuple[str, ...] = ()  # what the user should know to read it right, and what would show more

    @property
    def zombies(self) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.zombie)

    @property
    def thread_total(self) -> int:
        return sum(p.thread_count for p in self.processes)

    @property
    def reuseport(self) -> bool:
        """Several listening sockets on one address and port (SO_REUSEPORT): each its own queue."""
        addrs = [sock.addr for sock in self.listen]
        return len(set(addrs)) < len(addrs)

    @property
    def queue_length(self) -> int:
        return sum(s.queue for s in self.listen)

    @property
    def netns_title(self) -> str | None:
        """ "netns 4026532290 (web1)", or None in our own namespace."""
        if self.netns is None:
            return self.netns_label  # another user's namespace: "the network namespace of pid N"
        return f"netns {self.netns}" + (f" ({self.netns_label})" if self.netns_label else "")

    def process(self, pid: int | None) -> Process | None:
        """The process of that pid in this sample (None: not in it, or no pid to look for)."""
        return next((p for p in self.processes if p.pid == pid), None)


class Event(NamedTuple):
    time: float
    kind: EventKind
    text: str  # one readable line: "fork 4250 (parent 4242)"
    pid: int | None = None
