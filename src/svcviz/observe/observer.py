"""The observer: one server's process tree, fds, threads, sockets and queue, as a Snapshot.

It reads only the server's processes in /proc and asks the kernel (sock_diag netlink, or
/proc/net/tcp when netlink is unavailable) only for the sockets on the server's ports, so a
sample costs what the server has, not what the machine has.
"""

from __future__ import annotations

import operator
import os
import resource
import socket
import threading
import time
from collections.abc import Callable

from svcviz import procstat
from svcviz.observe import choose, procfs, syscalls, titles
from svcviz.observe.netns import NamespaceError, Place
from svcviz.observe.snapshot import Connection, Counters, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.observe.sockdiag import TABLED_STATES, SockDiag
from svcviz.observe.sockets import LISTEN, SYN_SENT, TcpRow, addr_host

ESTABLISHED = 1

FAMILIES = (socket.AF_INET, socket.AF_INET6)
WILDCARDS = {"0.0.0.0", "::"}
BY_SERVER_THEN_CLIENT_PORT = operator.itemgetter(0, 3)  # TcpRow: local, remote_port
# Fds, threads and connections kept for reuse: two generations, the older dropped when the
# newer grows past this (churn), so a busy server cannot grow them without bound.
OBJECTS_KEPT = 32768
ROWS_KEPT_FOR = 5.0  # seconds a dump of the ports' rows may stand for later samples (_port_rows)

TYPE_CHECKING = False  # as in snapshot.py: `typing` only for the type checker
if TYPE_CHECKING:
    from typing import Any, TypeVar

    Made = TypeVar("Made")


class ObserveError(Exception):
    """The observer cannot do what it was asked: one line for the user."""


class TargetError(ObserveError):
    """No such server: nothing on the port, no such pid, a pid that listens on nothing."""


class _Kept:
    """One result kept with the inputs it was made from: made again only when they differ
    (compared identity first, so cheaply: the inputs are themselves reused objects)."""

    def __init__(self) -> None:
        self.inputs: object = None
        self.result: object = None
        self.reused = False

    def get(self, inputs: object, make: Callable[[], Any]) -> Any:
        self.reused = self.inputs is not None and self.inputs == inputs
        if not self.reused:
            self.inputs, self.result = inputs, make()
        return self.result


class _Record:
    """One process of the tree, kept between samples and brought up to date, as htop keeps
    its process rows (ProcessTable_getProcess) instead of making them anew each scan.

    Its stat is read every sample (the state must be fresh: see quiet) and parsed again only
    when its text changed. The rule that saves most of a sample ("unchanged since"): a
    process changes its fd table only by running, and most of a server's processes sleep
    between samples. /proc/PID/schedstat tells whether one ran: its run time (ns) grows
    when it leaves a CPU, its count of times on a CPU when it gets one. A single-threaded
    process that is not running now, and whose schedstat is the one read just before its fd
    table was read last, has the same fd table: it is not read again. (Threads share the
    table but have their own counts: multi-threaded processes are always read. A process
    woken but still waiting for a CPU has an unchanged schedstat but is runnable, "R" in
    its stat: that is why stat is read first, and not skipped.)"""

    __slots__ = (
        "adopted", "cmdline", "fds", "ino", "links", "process", "quiet", "ran", "ran_now", "readable",
        "schedstat_fd", "stat", "stat_fd", "stat_text",
    )  # fmt: skip

    def __init__(self, ino: int, stat_text: str, stat: procstat.Stat, stat_fd: int | None = None) -> None:
        self.ino = ino  # of /proc/PID: a later process reusing the pid has another
        self.stat_text = stat_text
        self.stat = stat
        self.ran: str | None = None  # schedstat read just before the fds were; None: cannot tell
        self.ran_now: str | None = None  # this sample's, read after stat, before the fds
        self.quiet = False  # this sample: not run since the fds were read, so they are reused
        self.fds: dict[int, int | None] | None = None  # fd -> socket inode, None for other files; None: not read
        self.links: dict[int, str] | None = None  # fd -> readlink text, for the fds that are not sockets
        self.readable = True
        self.adopted = False
        self.cmdline: str | None = None
        self.process: Process | None = None  # what a sample made of it, while stat and fds stay the same
        self.stat_fd = stat_fd  # /proc/PID/stat and schedstat kept open (keep_open), or None
        self.schedstat_fd: int | None = None

    @classmethod
    def read(cls, pid: int, ino: int, keep: bool) -> _Record | None:
        """A process not seen before (or a new one with a seen pid): its stat; None if gone.
        keep: read it through an fd kept open (see keep_open), if it can be opened."""
        fd = procfs.open_file(f"/proc/{pid}/stat") if keep else None
        text = procfs.reread(fd) if fd is not None else procstat.read_text(f"/proc/{pid}/stat")
        stat = procstat.stat_of(text)
        if text is None or stat is None:
            if fd is not None:
                os.close(fd)
            return None
        return cls(ino, text, stat, stat_fd=fd)

    @property
    def files(self) -> int:
        """How many files it keeps open."""
        return (self.stat_fd is not None) + (self.schedstat_fd is not None)

    def keep_open(self, pid: int) -> None:
        """Keep its stat and schedstat open (those not yet): each sample reads them again
        (pread) without opening them, which halves what reading them costs."""
        if self.stat_fd is None:
            self.stat_fd = procfs.open_file(f"/proc/{pid}/stat")
        if self.schedstat_fd is None:
            self.schedstat_fd = procfs.open_file(f"/proc/{pid}/schedstat")
        if self.stat_fd is None or self.schedstat_fd is None:
            self.close()

    def close(self) -> None:
        for fd in (self.stat_fd, self.schedstat_fd):
            if fd is not None:
                os.close(fd)
        self.stat_fd = self.schedstat_fd = None

    def _read(self, pid: int, fd: int | None, name: str) -> str | None:
        return procfs.reread(fd) if fd is not None else procstat.read_text(f"/proc/{pid}/{name}")

    def update(self, pid: int) -> bool:
        """Bring stat up to date (False: the process is gone) and tell if it is quiet."""
        # (Run for every process of the tree in every sample: the kept-open reads inline.)
        text = procfs.reread(self.stat_fd) if self.stat_fd is not None else self._read(pid, None, "stat")
        if text != self.stat_text:
            stat = procstat.stat_of(text)
            if text is None or stat is None:
                return False
            if stat.name != self.stat.name:  # exec: another program, another command line
                self.cmdline = None
            self.stat_text, self.stat, self.process = text, stat, None
        stat = self.stat
        if stat.threads == 1 and stat.state not in ("R", "Z"):  # _can_tell
            fd = self.schedstat_fd
            self.ran_now = procfs.reread(fd) if fd is not None else self._read(pid, None, "schedstat")
            self.quiet = self.ran_now is not None and self.ran_now == self.ran and self.fds is not None
        else:
            self.ran_now, self.quiet = None, False
        return True

    def update_fds(self, pid: int) -> None:
        """The fd table, read unless quiet; an equal table keeps the old object."""
        if self.quiet:
            return
        if self.ran_now is None and _can_tell(self.stat):  # a new record: read before the fds
            self.ran_now = self._read(pid, self.schedstat_fd, "schedstat")
        self.ran = self.ran_now
        fds: dict[int, int | None] = {}
        links: dict[int, str] = {}
        readable = True
        if self.stat.state != "Z":
            try:
                fds = procfs.read_fd_sockets(pid, links) or {}
            except procfs.FdTableUnreadable:
                readable = False
        if fds != self.fds or readable != self.readable or links != self.links:
            self.fds, self.links, self.readable, self.process = fds, links, readable, None

    def names(self, pid: int) -> tuple[str, str]:
        """(command line, title), from one read of its cmdline: the command line as first
        read (until an exec), the title as it is now (setproctitle rewrites it)."""
        raw = procfs.read_cmdline_raw(pid)
        if self.cmdline is None:
            self.cmdline = procfs.command_of(raw)
        return self.cmdline, titles.title_of(raw)


def _can_tell(stat: procstat.Stat) -> bool:
    """Whether schedstat tells if the process ran: single-threaded and not on a CPU now."""
    return stat.threads == 1 and stat.state not in ("R", "Z")


class Observer:
    """One server, watched: Observer(pid=...) or Observer(port=...) finds it at once
    (TargetError if it cannot), then each sample() returns a Snapshot. ports: the ports it
    listened on when found; port: the lowest. notice: what the user should be told about
    the target (a thread id resolved to its process), or None. Watching a port follows it:
    once the server is gone and nothing of its tree listens, whoever listens on the port
    next is the server (root_pid changes; students' servers crash and are started again).
    sample() may run in any thread, one at a time; close() releases the netlink socket."""

    def __init__(
        self,
        pid: int | None = None,
        port: int | None = None,
        *,
        netlink: bool = True,
        addr: tuple[str, int] | None = None,
        netns: str | None = None,
    ) -> None:
        """netlink=False reads /proc/net/tcp{,6} instead of asking sock_diag (the fallback
        where netlink is unavailable; it cannot tell a listening socket's backlog).
        addr (host, port): the one listener of several on its port (port may be omitted).
        netns (PATH|PID|NAME): look in that network namespace; else in the target pid's."""
        port = addr[1] if port is None and addr is not None else port
        if (pid is None) == (port is None):
            raise ValueError("Observer needs exactly one of pid and port")
        if not os.path.isdir("/proc/self"):
            raise TargetError("no /proc: svcviz watch needs Linux")
        try:
            self.place = Place.of(pid=(procfs.read_tgid(pid) or pid) if pid is not None else None, netns=netns)
        except NamespaceError as exc:
            raise TargetError(str(exc)) from None
        self.netns = self.place.ns  # the server's network namespace (netns.NetNs) when not ours
        self._addr = addr
        self._unowned_port: int | None = None  # watching a listener whose process cannot be read
        self._dual_stack = False  # a [::] listener: its IPv4 clients knock as IPv4 sockets
        self._diag: SockDiag | None = self.place.sock_diag() if netlink else None
        self._records: dict[int, _Record] = {}  # pid -> what is known of each process of the tree
        # Files kept open for the records: a quarter of our fd limit, the rest is the caller's.
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._files_left = (soft if soft != resource.RLIM_INFINITY else 65536) // 4
        self._outsiders: dict[int, int] = {}  # pid -> /proc inode, of processes seen outside the tree
        self._root_start: int | None = None
        self._lock = threading.Lock()  # one sample at a time: they share the netlink socket
        self._objects: dict[tuple[object, ...], object] = {}
        self._previous_objects: dict[tuple[object, ...], object] = {}
        # What the last sample derived, kept to be reused while its inputs stay equal
        # (most of a server sleeps between samples): see _sample.
        self._holders = _Kept()
        self._served = _Kept()
        self._connections_kept = _Kept()
        self._split = _Kept()  # the ports' dump: (listeners, the other sockets)
        self._half_open = _Kept()
        self._listening_kept = _Kept()
        self._unreadable = _Kept()
        self._unheld: frozenset[int] = frozenset()  # inodes of connections no process of the tree held
        self._processes: tuple[Process, ...] = ()  # the last sample's, and its listening sockets
        self._listen: tuple[ListenSocket, ...] = ()
        # The last dump of the ports' rows, what it was made under and when (_port_rows).
        self._rows_key: tuple[object, ...] | None = None
        self._rows_at = 0.0
        self._rows: tuple[list[TcpRow], list[TcpRow], list[TcpRow]] = ([], [], [])
        # Socket inodes of the tree known not to be a listener we should add: see _listeners_now.
        self._explained: set[int] = set()
        self._totals = self.place.netstat()
        self._no_knocking_at: tuple[int, int] | None = None  # drop counters when no client waited in SYN_SENT
        self._calls: dict[tuple[int, int], syscalls.Call | None] = {}  # this sample's syscall reads; None: refused
        self._parsed_calls: dict[str, syscalls.Call] = {}
        self.notice: str | None = None
        self._followed_port = port
        self._looked_for: tuple[frozenset[int], int | None] = (frozenset(), None)  # see listener_on
        try:
            self.root_pid = self._root_listening_on(port) if port is not None else self._existing(pid or 0)
            tree = self._tree()
            if self.root_pid is not None and self.root_pid not in tree:  # it exited while we looked
                raise TargetError(f"process {self.root_pid} is gone")
            listening = self._listening(tree, _socket_holders(tree), self._all_listeners(), _tree_key(tree))
            if pid is not None and self.root_pid is not None:
                _check_is_server(self.root_pid, tree, listening)
            if not listening:
                raise TargetError(f"process {self.root_pid} listens on nothing")
        except TargetError:
            self.close()
            raise
        # Where a client reaches it: the first listener's own address and family.
        self.connect_host = _connect_host(listening[0].addr)
        self.ports: tuple[int, ...] = tuple(sorted({sock.port for sock in listening}))
        self.port: int | None = self.ports[0]
        self._ports = self.ports  # what the last sample listened on (the filtered dumps' ports)
        self._families = {_family(sock.addr) for sock in listening}
        self._dual_stack = any(sock.addr.startswith("[::]:") for sock in listening)

    # -- finding the server ---------------------------------------------------------

    def _existing(self, pid: int) -> int:
        """The process pid, or the process of thread pid (a tid pasted from `ps -L`)."""
        tgid = procfs.read_tgid(pid)
        if tgid is not None and tgid != pid:
            self.notice = f"{pid} is a thread of process {tgid}: watching process {tgid}"
            pid = tgid
        stat = procstat.read_stat(pid)
        if stat is None:
            raise TargetError(f"no process {pid}")
        self._root_start = stat.start
        return pid

    def _root_listening_on(self, port: int) -> int | None:
        """The server's root; None when no process holding its listener may be read (then
        the listener's owner, as the kernel reports it, is all that is known: a note says)."""
        root = self._listener_stat(port)
        if root is None:
            self._unowned_port = port
            return None
        self._root_start = root.start
        return root.pid

    def listener_on(self, port: int) -> int | None:
        """The pid of the server listening on port now, or None. /proc is searched again only
        when the port's listening sockets changed (searching it reads every process's fds)."""
        with self._lock:  # the netlink socket is shared with sample()
            return self._listener_on(port)

    def _listener_on(self, port: int) -> int | None:
        inodes = frozenset(row.inode for row in self._all_listeners() if row.local_port == port)
        if inodes != self._looked_for[0]:
            try:
                root = self._listener_stat(port) if inodes else None
            except TargetError:
                root = None
            found = root.pid if root is not None else None
            self._looked_for = (inodes, found)
        return self._looked_for[1]

    def _listener_stat(self, port: int) -> procstat.Stat | None:
        """The topmost process holding a socket listening on port (a fork server's children
        inherit the listening socket; their parent is the server): see choose.py. None when
        none that holds it may be read."""
        rows = choose.on_address(self._all_listeners(), port, self._addr)
        if not rows:
            if self._addr is not None:
                raise TargetError(f"nothing is listening on {_addr_text(self._addr)}")
            raise TargetError(self.place.nothing_on(port))
        try:
            return choose.choose(rows, f"port {port}").root
        except choose.Ambiguous as exc:
            raise TargetError(str(exc)) from None

    def _follow_port(self, tree: dict[int, _Record], listening: list[ListenSocket]) -> bool:
        """Watching a port whose server is gone (and none of its tree listens): take whoever
        listens on it now as the server. True if the root changed."""
        root = tree.get(self.root_pid) if self.root_pid is not None else None
        if self._followed_port is None or listening or (root is not None and root.stat.state != "Z"):
            return False
        pid = self._listener_on(self._followed_port)
        if pid is None or pid == self.root_pid:
            return False
        stat = procstat.read_stat(pid)
        if stat is None:
            return False
        # A new tree: the old one's processes (and those seen outside it) are no longer ours
        # to skip or to keep.
        self.root_pid, self._root_start = pid, stat.start
        self._outsiders = {}
        for record in self._records.values():
            self._files_left += record.files
            record.close()
        self._records = {}
        return True

    # -- the process tree -----------------------------------------------------------

    def _tree(self) -> dict[int, _Record]:
        """The root and its descendants, plus what was in the tree and was reparented out of
        it (adopted), each brought up to date (_Record), in tree order.

        A process seen outside the tree is not read again: a process can only join the tree
        by being forked into it, as a new process. A new process may reuse a dead one's pid,
        but not its /proc directory's inode number (the kernel drops the dead one's dentry),
        so an outsider is known by both, and so is a record."""
        listed = procfs.list_processes()
        self._outsiders = {pid: ino for pid, ino in self._outsiders.items() if listed.get(pid) == ino}
        known = self._records
        records: dict[int, _Record] = {}
        for pid, ino in listed.items():
            if self._outsiders.get(pid) == ino:
                continue
            record = known.get(pid)
            if record is None or record.ino != ino:
                # Its stat through a kept fd from the first read, while the files allowed
                # last (a record found outside the tree closes it below).
                record = _Record.read(pid, ino, self._files_left >= 2)
                if record is not None:
                    self._files_left -= record.files
            elif not record.update(pid):
                record = None
            if record is not None:
                records[pid] = record
        children: dict[int, list[int]] = {}
        for pid, record in records.items():
            children.setdefault(record.stat.ppid, []).append(pid)

        order: list[tuple[int, bool]] = []
        seen: set[int] = set()

        def descend(top: int, adopted: bool) -> None:
            stack = [top]
            while stack:
                pid = stack.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                order.append((pid, adopted and pid == top))
                below = children.get(pid)
                if below:
                    stack.extend(sorted(below, reverse=True))

        root = records.get(self.root_pid) if self.root_pid is not None else None
        if root is not None and root.stat.start == self._root_start:  # not a later process with its pid
            descend(root.stat.pid, False)
        for pid in sorted(known):
            if pid in records and records[pid] is known[pid] and pid not in seen:
                descend(pid, True)
        outside = records.keys() - seen
        self._outsiders.update((pid, listed[pid]) for pid in outside)
        for pid in outside:
            self._files_left += records[pid].files
            records[pid].close()

        tree = {}
        for pid, adopted in order:
            record = records[pid]
            # Kept open from its first look in the tree: a one-shot `watch --once` looks
            # twice (the Observer, then its sample), and open + 2 preads + close is fewer
            # calls than two reads by path (open, read, close each).
            if record.files < 2 and self._files_left >= 2 - record.files:
                self._files_left += record.files
                record.keep_open(pid)
                self._files_left -= record.files
            record.update_fds(pid)
            if record.adopted != adopted:
                record.adopted, record.process = adopted, None
            tree[pid] = record
        for pid, record in known.items():
            if tree.get(pid) is not record and record.files:
                self._files_left += record.files
                record.close()  # gone, or out of the tree
        self._records = tree
        return tree

    # -- sockets --------------------------------------------------------------------

    def _all_listeners(self) -> list[TcpRow]:
        """Every listening socket of the machine (a LISTEN-only dump: the kernel walks only
        its table of listeners)."""
        if self._diag is not None:
            try:
                return [row for family in FAMILIES for row in self._diag.dump(family, 1 << LISTEN)]
            except OSError:
                self._drop_netlink()
        return [row for row in self.place.tcp_rows() if row.state == "LISTEN"]

    def _drop_netlink(self) -> None:
        """Netlink failed mid-sample (it should not): /proc/net/tcp from now on."""
        if self._diag is not None:
            self._diag.close()
            self._diag = None

    def _port_rows(
        self, ports: tuple[int, ...], families: tuple[int, ...], drops: tuple[int, int], still: tuple[int, ...] | None
    ) -> tuple[list[TcpRow], list[TcpRow], list[TcpRow]]:
        """The kernel's rows for the ports, or the last dump's again while nothing can have
        changed them: the dump walks every socket of the machine (10,000 idle connections:
        ~35 ms of kernel time a sample, most of what watching such a server costs).
        still: the tree's pids when none of its processes ran since the last sample, else
        None. A socket's state and queues change by a segment in or out (then the Tcp MIB's
        counters move: read before the dump) or by a process holding it (one of the tree's,
        which would have run); what changes a row with neither, a timer's end of TIME_WAIT
        or FIN_WAIT2, is why a kept dump stands for at most ROWS_KEPT_FOR seconds."""
        mib = self.place.tcp_mib() if still is not None and self._diag is not None else None
        key = (ports, families, drops, still, mib) if mib is not None else None
        if key is not None and key == self._rows_key and time.monotonic() - self._rows_at < ROWS_KEPT_FOR:
            return self._rows
        rows = self._dump_port_rows(ports, families, drops)
        self._rows_key, self._rows_at, self._rows = key, time.monotonic(), rows
        return rows

    def _dump_port_rows(
        self, ports: tuple[int, ...], families: tuple[int, ...], drops: tuple[int, int]
    ) -> tuple[list[TcpRow], list[TcpRow], list[TcpRow]]:
        """(listeners on the ports, the other sockets on them, clients in SYN_SENT toward them).

        One dump per family listened on returns the listeners and their connections together,
        filtered in the kernel by port (sockdiag.source_port_filter): the kernel walks its
        table once and copies only the server's sockets. Clients in SYN_SENT toward the ports
        are asked for only when there may be some: a local client waits in SYN_SENT because
        its SYN was dropped, and every drop counts in the machine's listen drop counters:
        while they stand where they were when no client waited, none does."""
        if self._diag is not None:
            try:
                dumps = tuple(self._diag.dump(family, TABLED_STATES, sports=ports) for family in families)
                listen_rows, others = self._split.get(dumps, lambda: _split_listeners(dumps))
                knocking: list[TcpRow] = []
                if drops != self._no_knocking_at:
                    knocks = {*families, socket.AF_INET} if self._dual_stack else families
                    for port in ports:
                        for family in sorted(knocks):
                            knocking += self._diag.dump(family, 1 << SYN_SENT, dport=port)
                    self._no_knocking_at = None if knocking else drops
                return listen_rows, others, knocking
            except OSError:
                self._drop_netlink()
        rows = self.place.tcp_rows(frozenset(ports))
        return (
            [row for row in rows if row.local_port in ports and row.state == "LISTEN"],
            [row for row in rows if row.local_port in ports and row.state != "LISTEN"],
            [row for row in rows if row.remote_port in ports and row.state == "SYN_SENT"],
        )

    def _listeners_now(
        self, listen_rows: list[TcpRow], served: list[TcpRow], holders: dict[int, list[tuple[int, int]]]
    ) -> list[TcpRow]:
        """The listeners to look at: those on our ports, plus every other one of the machine
        when the tree holds a socket that none of the rows explains and that was not looked
        up before (the server may have opened a listener on a new port: rare, and then a
        LISTEN-only dump, which walks only the kernel's table of listeners, finds it)."""
        if self._holders.reused:  # the same sockets held as last sample: all explained then
            return listen_rows
        inodes = holders.keys()
        unexplained = inodes - self._explained - {row.inode for row in listen_rows} - {row.inode for row in served}
        if unexplained:
            listen_rows = self._all_listeners()
        self._explained = (self._explained & inodes) | unexplained
        return listen_rows

    def _deferred(self, served: list[TcpRow], families: tuple[int, ...]) -> frozenset[tuple[str, str]]:
        """(server, client) of half-open server rows whose local client is ESTABLISHED: the
        handshake is done, and the server holds it back until the first bytes come
        (TCP_DEFER_ACCEPT). Asked only when there are SYN_RECV rows."""
        half_open = self._half_open.get(
            served, lambda: {(row.local, row.remote) for row in served if row.state == "SYN_RECV"}
        )
        if not half_open:
            return frozenset()
        ports = sorted({row.local_port for row in served if row.state == "SYN_RECV"})
        clients: list[TcpRow] = []
        if self._diag is not None:
            try:
                for port in ports:
                    for family in families:
                        clients += self._diag.dump(family, 1 << ESTABLISHED, dport=port)
            except OSError:
                self._drop_netlink()
        if self._diag is None:
            clients = [row for row in self.place.tcp_rows(frozenset(ports)) if row.state == "ESTABLISHED"]
        return frozenset((row.remote, row.local) for row in clients if (row.remote, row.local) in half_open)

    def _listening(
        self,
        tree: dict[int, _Record],
        holders: dict[int, list[tuple[int, int]]],
        rows: list[TcpRow],
        tree_key: tuple[object, ...],
    ) -> list[ListenSocket]:
        """The listening sockets of the rows that the tree holds. Who holds each (every child
        of a fork server: 200 holders here, ordered by start time) is kept while the rows and
        the tree's fds and start times (tree_key, which holders derive from) stay equal."""
        sockets: list[ListenSocket] = self._listening_kept.get(
            (rows, tree_key, self.root_pid, self._unowned_port), lambda: self._held_listeners(tree, holders, rows)
        )
        if len({sock.addr for sock in sockets}) < len(sockets):  # reuseport: who serves which socket
            sockets = _with_pollers(tree, sockets)  # read again each sample: epoll_ctl changes no fd
        return sockets

    def _held_listeners(
        self, tree: dict[int, _Record], holders: dict[int, list[tuple[int, int]]], rows: list[TcpRow]
    ) -> list[ListenSocket]:
        sockets = []
        if self.root_pid is None and self._unowned_port is not None:  # no process readable: its listeners by address
            rows = choose.on_address(rows, self._unowned_port, self._addr)
        for row in rows:
            if row.inode in holders or self.root_pid is None:
                held = holders.get(row.inode, [])
                pid, fd = _first_holder(tree, held)
                pids = tuple(sorted({p for p, _ in held}, key=lambda p: (tree[p].stat.start, p)))
                sockets.append(
                    ListenSocket(
                        row.local, row.local_port, row.rx_queue, row.tx_queue, pid, fd, row.inode, pids, uid=row.uid
                    )
                )
        sockets.sort(key=lambda s: (s.port, s.addr, s.fd if s.fd is not None else -1))
        return sockets

    # -- the sample -----------------------------------------------------------------

    def sample(self) -> Snapshot:
        with self._lock:
            return self._sample()

    def _sample(self) -> Snapshot:
        snapshot, tree, listening, unheld = self._sample_tree()
        if self._follow_port(tree, listening):
            snapshot, _, _, unheld = self._sample_tree()
        elif unheld - self._unheld:
            # Connections accepted after the fd tables were read (a sample reads them before
            # the kernel's connections): read again, once, so that each accepted connection
            # has its holder. A socket held outside the tree stays unheld, and is not
            # retried for in every sample.
            snapshot, _, _, unheld = self._sample_tree()
        self._unheld = unheld
        return snapshot

    def _sample_tree(self) -> tuple[Snapshot, dict[int, _Record], list[ListenSocket], frozenset[int]]:
        """Each step below is a function of inputs that mostly stay equal between samples
        (fd tables are reused objects, netlink rows too): each result is kept with its
        inputs (_Kept) and reused while they are equal."""
        now = time.time()
        self._calls = {}
        tree = self._tree()
        tree_key = _tree_key(tree)
        holders = self._holders.get(tree_key, lambda: _socket_holders(tree))
        families = tuple(sorted(self._families)) or FAMILIES
        totals = self.place.netstat()
        # Every fd table of the tree read: else a socket nobody holds may be an unreadable one's.
        readable = bool(tree) and all(record.readable for record in tree.values())
        still = tuple(tree) if readable and all(record.quiet for record in tree.values()) else None
        listen_rows, served, knocking = self._port_rows(self._ports, families, totals, still)
        deferred = self._deferred(served, families)
        listening = self._listening(tree, holders, self._listeners_now(listen_rows, served, holders), tree_key)
        self._ports = tuple(sorted(set(self.ports) | {sock.port for sock in listening}))
        self._families = {_family(sock.addr) for sock in listening}
        self._dual_stack = any(sock.addr.startswith("[::]:") for sock in listening)
        served, by_inode = self._served.get(
            (served, knocking, listening, tree_key, deferred), lambda: self._served_rows(served, listening, holders)
        )
        sockets_reused = self._served.reused
        serving_threads = self._serving_threads(tree, by_inode)
        connections = self._connections_kept.get(
            (self._served.inputs, serving_threads, readable),
            lambda: self._connections(tree, holders, served, knocking, listening, serving_threads, deferred, readable),
        )

        counters = Counters(
            totals[0], totals[1], max(0, totals[0] - self._totals[0]), max(0, totals[1] - self._totals[1])
        )
        self._totals = totals
        listen_inodes = {sock.inode: sock for sock in listening}
        processes = tuple(
            [self._process(pid, record, listen_inodes, by_inode, sockets_reused) for pid, record in tree.items()]
        )
        # The same tuple while each Process is the same object: what draws it (the server
        # panel, the architecture's judge) tells an unchanged tree by identity.
        kept = self._processes
        if len(processes) == len(kept) and all(a is b for a, b in zip(processes, kept, strict=True)):
            processes = kept
        self._processes = processes
        listen = tuple(listening)
        if listen == self._listen:  # a few sockets: equality is cheap, and the old tuple goes on
            listen = self._listen
        self._listen = listen
        unreadable = self._unreadable.get(processes, lambda: _unreadable(processes))
        if len(self._objects) > OBJECTS_KEPT:
            self._previous_objects, self._objects = self._objects, {}
        snapshot = Snapshot(
            now,
            self.root_pid,
            listen,
            processes,
            connections,
            counters,
            unreadable,
            netns=self.netns.inode if self.netns else None,
            netns_label=(self.netns.label if self.netns.inode else self.netns.title) if self.netns else None,
            notes=self._notes(tree, listening, connections),
        )
        # Only where every table was read can a new read tell who holds them.
        unheld = frozenset(inode for inode in by_inode if inode not in holders) if readable else frozenset()
        return snapshot, tree, listening, unheld

    def _served_rows(
        self, served: list[TcpRow], listening: list[ListenSocket], holders: dict[int, list[tuple[int, int]]]
    ) -> tuple[list[TcpRow], dict[int, TcpRow]]:
        """(our connections' rows in order, inode -> row). Ours: on one of our listeners'
        addresses, or held by our processes (the listener may be closed, and the port
        someone else's now). A row with no peer is a socket merely bound to the port
        (state CLOSE), not a connection (the netlink dump does not ask for those: TABLED_STATES)."""
        # A thousand rows share a handful of addresses: each is judged once.
        ours = {local for local in {row.local for row in served} if _belongs(listening, local)}
        served = sorted(
            [row for row in served if row.remote_port and (row.local in ours or row.inode in holders)],
            key=BY_SERVER_THEN_CLIENT_PORT,
        )
        return served, {row.inode: row for row in served if row.inode}

    def _connections(
        self,
        tree: dict[int, _Record],
        holders: dict[int, list[tuple[int, int]]],
        served: list[TcpRow],
        knocking: list[TcpRow],
        listening: list[ListenSocket],
        serving_threads: dict[tuple[int, int], int],
        deferred: frozenset[tuple[str, str]],
        readable: bool,
    ) -> tuple[Connection, ...]:
        connections = []
        # A socket no process of the tree holds is "unknown" only where some fd table could
        # not be read, or no process could be (another user's server): readable is False then.
        # With every table read it was accepted after the tables were (a sample reads them
        # first), and the next sample names its holder.
        blind = not readable
        for row in served:
            pid, fd = _owner(tree, holders.get(row.inode, []), self.root_pid) if row.inode else (None, None)
            connections.append(
                self._made(
                    Connection,
                    row.remote,
                    row.local,
                    _conn_state(row, deferred),
                    row.state,
                    pid,
                    fd,
                    serving_threads.get((pid, fd)) if pid is not None and fd is not None else None,
                    blind and bool(row.inode) and pid is None,  # held, by a process we may not read
                )
            )
        for row in sorted(knocking, key=lambda row: (row.remote, row.local_port)):
            if listening and _knocks_on(row, listening):
                connections.append(self._made(Connection, row.local, row.remote, "syn_sent", row.state))
        return tuple(connections)

    def _made(self, kind: type[Made], *fields: object) -> Made:
        """kind(*fields), reusing the previous sample's equal object: most fds and
        connections do not change between samples, and one made anew is garbage the next sample."""
        key = (kind, *fields)
        made = self._objects.get(key)
        if made is None:
            made = self._objects[key] = self._previous_objects.get(key) or kind(*fields)
        return made  # type: ignore[return-value]  # keyed by kind: what is stored is a kind

    def _process(
        self,
        pid: int,
        record: _Record,
        listen_inodes: dict[int, ListenSocket],
        conns: dict[int, TcpRow],
        sockets_reused: bool,
    ) -> Process:
        """The record's last Process while it holds: its stat, fds, readability and place in
        the tree unchanged (the record drops it when one changes), and a single thread (a
        multi-threaded process's threads are read anew). When only the sockets behind its
        fds changed (a churning server: one connection's state moves every sample), it has
        not run since: its title, user and wait are as they were, only its fds are made again."""
        stat = record.stat
        kept = record.process
        if kept is not None and stat.threads <= 1:
            if sockets_reused:
                return kept
            fds = self._fds(record.fds or {}, record.links or {}, listen_inodes, conns)
            if fds != kept.fds:
                kept = record.process = kept._replace(fds=fds)
            return kept
        command, title = record.names(pid)
        record.process = Process(
            pid,
            stat.ppid,
            stat.name,
            stat.state,
            self._threads(stat),
            stat.rss,
            self._fds(record.fds or {}, record.links or {}, listen_inodes, conns),
            record.readable,
            record.adopted,
            command,
            title,
            titles.user_name(procfs.read_real_uid(pid)),
        )
        return record.process

    def _fds(
        self,
        inodes: dict[int, int | None],
        links: dict[int, str],
        listen_inodes: dict[int, ListenSocket],
        conns: dict[int, TcpRow],
    ) -> tuple[Fd, ...]:
        fds = []
        for fd, inode in inodes.items():
            if inode is None:
                fds.append(self._made(Fd, fd, "other", None, None, None, None, links.get(fd, "")))
            elif inode in listen_inodes:
                addr = listen_inodes[inode].addr
                fds.append(self._made(Fd, fd, "listen", None, addr, inode, "LISTEN", f"socket:[{inode}]"))
            elif inode in conns:
                row = conns[inode]
                fds.append(self._made(Fd, fd, "conn", row.remote, row.local, inode, row.state, f"socket:[{inode}]"))
            else:
                fds.append(self._made(Fd, fd, "other", None, None, inode, None, f"socket:[{inode}]"))
        return tuple(fds)

    def _threads(self, stat: procstat.Stat) -> tuple[Thread, ...]:
        if stat.state == "Z":
            return ()
        if stat.threads <= 1:
            return (self._thread(stat.pid, stat.pid, stat.state, stat.name),)
        threads = []
        for tid in procfs.list_tids(stat.pid):
            task = procstat.read_stat(stat.pid, tid)
            if task is not None:
                threads.append(self._thread(stat.pid, tid, task.state, task.name))
        return tuple(threads)

    def _thread(self, pid: int, tid: int, state: str, name: str) -> Thread:
        """A thread and the call it sleeps in (a running one is not asked: it says "running")."""
        if state in "RZX":
            return self._made(Thread, tid, state, name)
        call = self._call(pid, tid)
        if call is None:
            return self._made(Thread, tid, state, name, None, None, None, False)
        return self._made(Thread, tid, state, name, call.name, call.fd, call.number)

    def _call(self, pid: int, tid: int) -> syscalls.Call | None:
        """/proc/PID/task/TID/syscall, read once a sample; None when the kernel refuses
        (it needs ptrace rights over the thread: root, or the same user)."""
        key = (pid, tid)
        if key not in self._calls:
            try:
                text = procfs.read_syscall(pid, tid)
            except PermissionError:
                self._calls[key] = None
            else:
                # A thread asleep in the same call reads the same text, sample after sample.
                call = self._parsed_calls.get(text)
                if call is None:
                    if len(self._parsed_calls) > OBJECTS_KEPT:
                        self._parsed_calls.clear()
                    call = self._parsed_calls[text] = syscalls.parse(text)
                self._calls[key] = call
        return self._calls[key]

    def _serving_threads(self, tree: dict[int, _Record], conns: dict[int, TcpRow]) -> dict[tuple[int, int], int]:
        """(pid, fd) -> the thread blocked reading that connection, in multi-threaded processes."""
        found = {}
        for pid, member in tree.items():
            if member.stat.threads <= 1 or member.stat.state == "Z":
                continue
            conn_fds = {fd for fd, inode in (member.fds or {}).items() if inode in conns}
            if not conn_fds:
                continue
            for tid in procfs.list_tids(pid):
                call = self._call(pid, tid)
                if call is not None and call.name in syscalls.RECEIVES and call.fd in conn_fds:
                    found[(pid, call.fd)] = tid
        return found

    def _notes(
        self, tree: dict[int, _Record], listening: list[ListenSocket], connections: tuple[Connection, ...]
    ) -> tuple[str, ...]:
        """What the user should know to read the sample right, once: what could not be
        entered or read, and what would show more."""
        notes = list(self.place.notes)
        if self.root_pid is None and listening:
            sock = listening[0]
            user = choose.user_name(sock.uid)
            notes.append(
                f"the listener {sock.addr} is {user}'s (uid {sock.uid}, inode {sock.inode}, as the kernel reports it); "
                f"no process holding it can be read: {choose.run_as(user)} to see its processes "
                "and who holds each connection"
            )
        elif any(conn.owner_unknown for conn in connections) or any(not m.readable for m in tree.values()):
            who = choose.run_as(*(choose.owner_of(pid) for pid, m in tree.items() if not m.readable))
            notes.append(f"owners unknown where fds cannot be read: {who} to see who holds each connection")
        return tuple(notes)

    def close(self) -> None:
        with self._lock:
            self._drop_netlink()
            for record in self._records.values():
                record.close()
            self._records = {}

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tree_key(tree: dict[int, _Record]) -> tuple[tuple[int, int, object], ...]:
    """The fds of the tree, and who came first (start time): all that holders depend on."""
    return tuple([(pid, record.stat.start, record.fds) for pid, record in tree.items()])


def _split_listeners(dumps: tuple[list[TcpRow], ...]) -> tuple[list[TcpRow], list[TcpRow]]:
    """(the listening sockets, the others) of the dumps."""
    rows = [row for dump in dumps for row in dump]
    return [row for row in rows if row.state == "LISTEN"], [row for row in rows if row.state != "LISTEN"]


def _unreadable(processes: tuple[Process, ...]) -> tuple[str, ...]:
    """What could not be read of them, one line each."""
    return tuple(f"pid {p.pid} fds: permission denied" for p in processes if not p.readable) + tuple(
        f"pid {p.pid} thread waits: permission denied"
        for p in processes
        if any(not t.syscall_readable for t in p.threads)
    )


def _socket_holders(tree: dict[int, _Record]) -> dict[int, list[tuple[int, int]]]:
    """socket inode -> [(pid, fd), ...] over the tree."""
    holders: dict[int, list[tuple[int, int]]] = {}
    for pid, member in tree.items():
        for fd, inode in (member.fds or {}).items():
            if inode is not None:
                holders.setdefault(inode, []).append((pid, fd))
    return holders


def _with_pollers(tree: dict[int, _Record], sockets: list[ListenSocket]) -> list[ListenSocket]:
    """Each listening socket with the pids whose epoll instance watches it."""
    inodes = {sock.inode for sock in sockets}
    pollers: dict[int, set[int]] = {}
    for pid in {pid for sock in sockets for pid in sock.holders}:
        record = tree[pid]
        for epfd, link in (record.links or {}).items():
            if link == "anon_inode:[eventpoll]":
                for _, inode in procfs.read_epoll_watched(pid, epfd):
                    if inode in inodes:
                        pollers.setdefault(inode, set()).add(pid)
    return [sock._replace(pollers=tuple(sorted(pollers.get(sock.inode, ())))) for sock in sockets]


def _first_holder(tree: dict[int, _Record], holders: list[tuple[int, int]]) -> tuple[int | None, int | None]:
    """The oldest process holding it (for a listening socket: the server, not its children)."""
    if len(holders) < 2:  # most connections: one holder
        return holders[0] if holders else (None, None)
    return min(holders, key=lambda h: (tree[h[0]].stat.start, h[0], h[1]))


def _owner(tree: dict[int, _Record], holders: list[tuple[int, int]], root: int | None) -> tuple[int | None, int | None]:
    """Who serves a connection: the oldest holder other than the root. A fork server's child
    serving connection k was forked before the later children that inherit k's leaked fd;
    the root holds it only because it accepted it (and perhaps forgot to close it)."""
    if len(holders) == 1 and holders[0][0] != root:  # most connections: held by their child only
        return holders[0]
    others = [h for h in holders if h[0] != root]
    return _first_holder(tree, others or holders)


def _conn_state(row: TcpRow, deferred: frozenset[tuple[str, str]] = frozenset()) -> str:
    if row.state == "ESTABLISHED":
        return "accepted" if row.inode else "queued"
    if row.state == "SYN_RECV":
        return "deferred" if (row.local, row.remote) in deferred else "syn_recv"
    return "closing"


def _host_matches(listen_host: str, host: str) -> bool:
    return listen_host in WILDCARDS or listen_host == host or (host.startswith("::ffff:") and listen_host == host[7:])


def _belongs(listening: list[ListenSocket], local: str) -> bool:
    """Whether a connection on local's port belongs to one of our listeners, not to another
    one sharing the port number on another address."""
    port = int(local.rsplit(":", 1)[1])
    return any(_host_matches(addr_host(sock.addr), addr_host(local)) for sock in listening if sock.port == port)


def _family(addr: str) -> int:
    return socket.AF_INET6 if addr.startswith("[") else socket.AF_INET


def _connect_host(addr: str) -> str:
    """Where a client on this machine reaches a listener: its own address, loopback for
    a wildcard one, in the listener's family."""
    host = addr_host(addr)
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _addr_text(addr: tuple[str, int]) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


def _check_is_server(pid: int, tree: dict[int, _Record], listening: list[ListenSocket]) -> None:
    """--pid must name a server: a process that listens itself (init, a shell, a
    supervisor are not one, though something under them may be). TargetError, saying what
    it is, otherwise."""
    root = tree[pid]
    name = root.stat.name
    if not root.readable:
        if listening:  # its own fds are hidden; its readable children hold the listener
            return
        user = choose.owner_of(pid)
        raise TargetError(
            f"process {pid} ({name}) is {user}'s: its fds cannot be read, so which sockets are its cannot be told: "
            f"name its port with --port (what any user may see), or {choose.run_as(user)}"
        )
    if {sock.inode for sock in listening} & set((root.fds or {}).values()):
        return
    if pid == 1:
        raise TargetError(f"pid 1 is init ({name}): name a server with --port or --pid")
    below = [(sock.pid, sock.addr) for sock in listening if sock.pid is not None and sock.pid != pid]
    if below:
        server, addr = below[0]
        raise TargetError(
            f"process {pid} ({name}) listens on nothing itself; pid {server} ({tree[server].stat.name}), "
            f"below it, listens on {addr}: name it with --pid {server}"
        )
    raise TargetError(f"process {pid} listens on nothing ({name}): name a server with --port or --pid")


def _knocks_on(row: TcpRow, listening: list[ListenSocket]) -> bool:
    """A client in SYN_SENT toward one of our listeners (on this machine: loopback, or the
    listener's own address)."""
    host = addr_host(row.remote)
    loopback = host.startswith("127.") or host == "::1"
    return any(
        sock.port == row.remote_port
        and (addr_host(sock.addr) == host or (addr_host(sock.addr) in WILDCARDS and loopback))
        for sock in listening
    )
