"""The observer: one server's process tree, fds, threads, sockets and queue, as a Snapshot.

It reads only the server's processes in /proc and asks the kernel (sock_diag netlink, or
/proc/net/tcp when netlink is unavailable) only for the sockets on the server's ports, so a
sample costs what the server has, not what the machine has.
"""

from __future__ import annotations

import operator
import os
import socket
import threading
import time
from dataclasses import dataclass

from svcviz import procstat
from svcviz.observe import procfs
from svcviz.observe.snapshot import Connection, Counters, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.observe.sockdiag import ALL_STATES, SockDiag
from svcviz.observe.sockets import LISTEN, SYN_SENT, TcpRow, addr_host, read_netstat, read_proc_net_tcp

FAMILIES = (socket.AF_INET, socket.AF_INET6)
WILDCARDS = {"0.0.0.0", "::"}
BY_SERVER_THEN_CLIENT_PORT = operator.itemgetter(0, 3)  # TcpRow: local, remote_port
# Fds, threads and connections kept for reuse: two generations, the older dropped when the
# newer grows past this (churn), so a busy server cannot grow them without bound.
OBJECTS_KEPT = 32768


class ObserveError(Exception):
    """The observer cannot do what it was asked: one line for the user."""


class TargetError(ObserveError):
    """No such server: nothing on the port, no such pid, a pid that listens on nothing."""


@dataclass
class _Member:
    """A process of the tree while a sample is assembled."""

    stat: procstat.Stat
    adopted: bool
    fds: dict[int, int | None]  # fd -> socket inode, None for other files
    readable: bool = True


class Observer:
    """One server, watched: Observer(pid=...) or Observer(port=...) finds it at once
    (TargetError if it cannot), then each sample() returns a Snapshot. ports: the ports it
    listened on when found; port: the lowest. notice: what the user should be told about
    the target (a thread id resolved to its process), or None. Watching a port follows it:
    once the server is gone and nothing of its tree listens, whoever listens on the port
    next is the server (root_pid changes; students' servers crash and are started again).
    sample() may run in any thread, one at a time; close() releases the netlink socket."""

    def __init__(self, pid: int | None = None, port: int | None = None, *, netlink: bool = True) -> None:
        """netlink=False reads /proc/net/tcp{,6} instead of asking sock_diag (the fallback
        where netlink is unavailable; it cannot tell a listening socket's backlog)."""
        if (pid is None) == (port is None):
            raise ValueError("Observer needs exactly one of pid and port")
        if not os.path.isdir("/proc/self"):
            raise TargetError("no /proc: svcviz watch needs Linux")
        self._diag: SockDiag | None = None
        if netlink:
            try:
                self._diag = SockDiag()
            except OSError:
                pass  # no sock_diag here: /proc/net/tcp will do, slower
        self._known: dict[int, int] = {}  # pid -> start time, of every process seen in the tree
        self._outsiders: dict[int, int] = {}  # pid -> /proc inode, of processes seen outside the tree
        self._cmdlines: dict[tuple[int, int], str] = {}
        # pid -> ((start, schedstat before the read), fds): see _fd_table
        self._fd_tables: dict[int, tuple[tuple[int, str], dict[int, int | None]]] = {}
        self._next_fd_tables: dict[int, tuple[tuple[int, str], dict[int, int | None]]] = {}
        self._lock = threading.Lock()  # one sample at a time: they share the netlink socket
        self._objects: dict[tuple, object] = {}
        self._previous_objects: dict[tuple, object] = {}
        # What the last sample derived, kept to be reused while its inputs stay equal
        # (most of a server sleeps between samples): see _sample.
        self._stats: dict[int, tuple[str, procstat.Stat]] = {}  # pid -> (stat text, parsed)
        self._holders_of: tuple[tuple, dict[int, list[tuple[int, int]]]] = ((), {})
        self._sockets_of: tuple[tuple, tuple] = ((), ())
        self._processes: dict[int, tuple[procstat.Stat, bool, bool, dict, Process]] = {}
        self._connections_for: tuple[dict, tuple[Connection, ...]] = ({}, ())
        self._totals = read_netstat()
        self._no_knocking_at: tuple[int, int] | None = None  # drop counters when no client waited in SYN_SENT
        self.notice: str | None = None
        self._followed_port = port
        self._looked_for: tuple[frozenset[int], int | None] = (frozenset(), None)  # see listener_on
        try:
            self.root_pid = self._root_listening_on(port) if port is not None else self._existing(pid)
            tree = self._tree()
            if self.root_pid not in tree:  # it exited while we looked
                raise TargetError(f"process {self.root_pid} is gone")
            listening = self._listening(tree, _socket_holders(tree))
        except TargetError:
            self.close()
            raise
        if not listening:
            self.close()
            if not tree[self.root_pid].readable:
                raise TargetError(f"process {self.root_pid}: its fds cannot be read (permission denied)")
            raise TargetError(f"process {self.root_pid} listens on nothing")
        self.ports: tuple[int, ...] = tuple(sorted({sock.port for sock in listening}))
        self.port: int | None = self.ports[0]

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
        self._known[pid] = self._root_start = stat.start
        return pid

    def _root_listening_on(self, port: int) -> int:
        root = self._listener_stat(port)
        self._known[root.pid] = self._root_start = root.start
        return root.pid

    def listener_on(self, port: int) -> int | None:
        """The pid of the server listening on port now, or None. /proc is searched again only
        when the port's listening sockets changed (searching it reads every process's fds)."""
        with self._lock:  # the netlink socket is shared with sample()
            return self._listener_on(port)

    def _listener_on(self, port: int) -> int | None:
        inodes = frozenset(row.inode for row in self._listen_rows() if row.local_port == port)
        if inodes != self._looked_for[0]:
            try:
                found = self._listener_stat(port).pid if inodes else None
            except TargetError:
                found = None
            self._looked_for = (inodes, found)
        return self._looked_for[1]

    def _listener_stat(self, port: int) -> procfs.Stat:
        """The topmost process holding a socket listening on port (a fork server's children
        inherit the listening socket; their parent is the server)."""
        inodes = {row.inode for row in self._listen_rows() if row.local_port == port}
        if not inodes:
            raise TargetError(f"nothing is listening on port {port}")
        holders = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                fds = procfs.read_fd_sockets(int(name)) or {}
            except procfs.FdTableUnreadable:
                continue
            if any(inode in inodes for inode in fds.values()):
                stat = procstat.read_stat(int(name))
                if stat:
                    holders[stat.pid] = stat
        tops = [stat for stat in holders.values() if stat.ppid not in holders]
        if not tops:
            raise TargetError(f"port {port}: the listening process cannot be read")
        return min(tops, key=lambda stat: (stat.start, stat.pid))

    def _follow_port(self, tree: dict[int, _Member], listening: list[ListenSocket]) -> bool:
        """Watching a port whose server is gone (and none of its tree listens): take whoever
        listens on it now as the server. True if the root changed."""
        root = tree.get(self.root_pid)
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
        self._known, self._outsiders = {pid: stat.start}, {}
        return True

    # -- the process tree -----------------------------------------------------------

    def _tree(self) -> dict[int, _Member]:
        """The root and its descendants, plus what was in the tree and was reparented out of
        it (adopted).

        A process seen outside the tree is not read again: a process can only join the tree
        by being forked into it, as a new process. A new process may reuse a dead one's pid,
        but not its /proc directory's inode number (the kernel drops the dead one's dentry),
        so an outsider is known by both."""
        listed = procfs.list_processes()
        self._outsiders = {pid: ino for pid, ino in self._outsiders.items() if listed.get(pid) == ino}
        stats = {}
        texts, known_texts = {}, self._stats
        for pid, ino in listed.items():
            if self._outsiders.get(pid) != ino:
                text = procstat.read_text(f"/proc/{pid}/stat")
                known = known_texts.get(pid)
                # The same text (it holds the start time) is the same process, as it was.
                stat = known[1] if known is not None and known[0] == text else procstat.stat_of(text)
                if stat is not None:
                    stats[pid] = stat
                    texts[pid] = (text, stat)
        self._stats = texts
        children: dict[int, list[int]] = {}
        for stat in stats.values():
            children.setdefault(stat.ppid, []).append(stat.pid)

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
                stack.extend(sorted(children.get(pid, ()), reverse=True))

        root = stats.get(self.root_pid)
        if root is not None and root.start == self._root_start:  # not a later process with its pid
            descend(self.root_pid, False)
        for pid, start in sorted(self._known.items()):
            stat = stats.get(pid)
            if stat is not None and stat.start == start and pid not in seen:
                descend(pid, True)
        self._known = {pid: stats[pid].start for pid, _ in order}
        self._outsiders.update((pid, listed[pid]) for pid in stats.keys() - seen)

        tree = {}
        for pid, adopted in order:
            stat = stats[pid]
            member = _Member(stat, adopted, {})
            if stat.state != "Z":
                try:
                    member.fds = self._fd_table(stat)
                except procfs.FdTableUnreadable:
                    member.readable = False
            tree[pid] = member
        self._fd_tables, self._next_fd_tables = self._next_fd_tables, {}
        return tree

    def _fd_table(self, stat: procstat.Stat) -> dict[int, int | None]:
        """The process's fds; read again only if it may have changed them.

        readlink() on every fd is most of a sample's cost, and most of a server's processes
        sleep in accept() or recv() between samples. A process changes its fd table only by
        running; a single-threaded one that has not run since we last read its table has
        the same table. /proc/PID/schedstat tells: its run time (ns) grows when it leaves a
        CPU, its count of times on a CPU when it gets one. So: not running now, and both
        unchanged since the read taken just before its table was read last -> the same
        table. (Threads share the table but have their own counts: only single-threaded
        processes are skipped.)"""
        pid = stat.pid
        ran = procstat.read_text(f"/proc/{pid}/schedstat") if stat.threads == 1 and stat.state != "R" else None
        previous = self._fd_tables.get(pid)
        if ran and previous and previous[0] == (stat.start, ran):
            fds = previous[1]
        else:
            fds = procfs.read_fd_sockets(pid) or {}
        if ran:
            self._next_fd_tables[pid] = ((stat.start, ran), fds)
        return fds

    # -- sockets --------------------------------------------------------------------

    def _listen_rows(self) -> list[TcpRow]:
        if self._diag is not None:
            try:
                return [row for family in FAMILIES for row in self._diag.dump(family, 1 << LISTEN)]
            except OSError:
                self._drop_netlink()
        return [row for row in read_proc_net_tcp() if row.state == "LISTEN"]

    def _drop_netlink(self) -> None:
        """Netlink failed mid-sample (it should not): /proc/net/tcp from now on."""
        if self._diag is not None:
            self._diag.close()
            self._diag = None

    def _port_rows(
        self, ports: frozenset[int], families: tuple[int, ...], drops: tuple[int, int]
    ) -> tuple[list[TcpRow], list[TcpRow]]:
        """(server-side rows on the ports, LISTEN excluded; clients in SYN_SENT toward them).

        Each dump walks the kernel's whole connection table, so: only the families listened
        on, and clients in SYN_SENT only when there may be some. A local client waits in
        SYN_SENT because its SYN was dropped, and every drop counts in the machine's listen
        drop counters: while they stand where they were when no client waited, none does."""
        if self._diag is not None:
            try:
                look_for_knocking = drops != self._no_knocking_at
                served, knocking = [], []
                for port in sorted(ports):
                    for family in families:
                        served += self._diag.dump(family, ALL_STATES & ~(1 << LISTEN), sport=port)
                        if look_for_knocking:
                            knocking += self._diag.dump(family, 1 << SYN_SENT, dport=port)
                if look_for_knocking:
                    self._no_knocking_at = None if knocking else drops
                return served, knocking
            except OSError:
                self._drop_netlink()
        rows = read_proc_net_tcp(ports)
        return (
            [row for row in rows if row.local_port in ports and row.state != "LISTEN"],
            [row for row in rows if row.remote_port in ports and row.state == "SYN_SENT"],
        )

    def _listening(self, tree: dict[int, _Member], holders: dict[int, list[tuple[int, int]]]) -> list[ListenSocket]:
        sockets = []
        for row in self._listen_rows():
            if row.inode in holders:
                pid, fd = _first_holder(tree, holders[row.inode])
                sockets.append(ListenSocket(row.local, row.local_port, row.rx_queue, row.tx_queue, pid, fd, row.inode))
        return sorted(sockets, key=lambda s: (s.port, s.addr))

    # -- the sample -----------------------------------------------------------------

    def sample(self) -> Snapshot:
        with self._lock:
            return self._sample()

    def _sample(self) -> Snapshot:
        snapshot, tree, listening = self._sample_tree()
        if self._follow_port(tree, listening):
            snapshot = self._sample_tree()[0]
        return snapshot

    def _sample_tree(self) -> tuple[Snapshot, dict[int, _Member], list[ListenSocket]]:
        """Each step below is a function of inputs that mostly stay equal between samples
        (fd tables are reused objects, netlink rows too): the previous result is kept with
        its inputs, compared (identity first, so cheaply) and reused when they are equal."""
        now = time.time()
        tree = self._tree()
        # The fds of the tree, and who came first (start time): all that holders depend on.
        tree_key = tuple([(pid, member.stat.start, member.fds) for pid, member in tree.items()])
        if self._holders_of[0] != tree_key:
            self._holders_of = (tree_key, _socket_holders(tree))
        holders = self._holders_of[1]
        listening = self._listening(tree, holders)
        ports = frozenset(self.ports) | {sock.port for sock in listening}
        families = tuple({_family(sock.addr) for sock in listening}) or FAMILIES
        totals = read_netstat()
        served, knocking = self._port_rows(ports, families, totals)
        sockets_key = (served, knocking, listening, tree_key)
        sockets_reused = self._sockets_of[0] == sockets_key
        if not sockets_reused:
            self._sockets_of = (sockets_key, self._served_rows(served, listening, holders))
        served, by_inode = self._sockets_of[1]
        serving_threads = self._serving_threads(tree, by_inode)
        connections = self._connections(tree, holders, served, knocking, listening, serving_threads, sockets_reused)

        counters = Counters(
            totals[0], totals[1], max(0, totals[0] - self._totals[0]), max(0, totals[1] - self._totals[1])
        )
        self._totals = totals
        listen_inodes = {sock.inode: sock for sock in listening}
        known, self._processes = self._processes if sockets_reused else {}, {}
        processes = tuple(
            [self._process(pid, member, listen_inodes, by_inode, known.get(pid)) for pid, member in tree.items()]
        )
        unreadable = tuple(f"pid {pid} fds: permission denied" for pid, m in tree.items() if not m.readable)
        if len(self._objects) > OBJECTS_KEPT:
            self._previous_objects, self._objects = self._objects, {}
        snapshot = Snapshot(now, self.root_pid, tuple(listening), processes, connections, counters, unreadable)
        return snapshot, tree, listening

    def _served_rows(
        self, served: list[TcpRow], listening: list[ListenSocket], holders: dict[int, list[tuple[int, int]]]
    ) -> tuple[list[TcpRow], dict[int, TcpRow]]:
        """(our connections' rows in order, inode -> row). Ours: on one of our listeners'
        addresses, or held by our processes (the listener may be closed, and the port
        someone else's now). A row with no peer is a socket merely bound to the port
        (state CLOSE), not a connection."""
        belongs = _Belongs(listening)
        served = sorted(
            (row for row in served if row.remote_port and (belongs(row.local) or row.inode in holders)),
            key=BY_SERVER_THEN_CLIENT_PORT,
        )
        return served, {row.inode: row for row in served if row.inode}

    def _connections(
        self,
        tree: dict[int, _Member],
        holders: dict[int, list[tuple[int, int]]],
        served: list[TcpRow],
        knocking: list[TcpRow],
        listening: list[ListenSocket],
        serving_threads: dict[tuple[int, int], int],
        sockets_reused: bool,
    ) -> tuple[Connection, ...]:
        if sockets_reused and self._connections_for[0] == serving_threads:
            return self._connections_for[1]
        connections = []
        for row in served:
            pid, fd = _owner(tree, holders.get(row.inode, []), self.root_pid) if row.inode else (None, None)
            connections.append(
                self._made(
                    Connection,
                    row.remote,
                    row.local,
                    _conn_state(row),
                    row.state,
                    pid,
                    fd,
                    serving_threads.get((pid, fd)),
                )
            )
        for row in sorted(knocking, key=lambda row: (row.remote, row.local_port)):
            if listening and _knocks_on(row, listening):
                connections.append(self._made(Connection, row.local, row.remote, "syn_sent", row.state))
        self._connections_for = (serving_threads, tuple(connections))
        return self._connections_for[1]

    def _made(self, kind: type, *fields):
        """kind(*fields), reusing the previous sample's equal object: most fds and
        connections do not change between samples, and a frozen dataclass is slow to make."""
        key = (kind, *fields)
        made = self._objects.get(key)
        if made is None:
            made = self._objects[key] = self._previous_objects.get(key) or kind(*fields)
        return made

    def _process(
        self,
        pid: int,
        member: _Member,
        listen_inodes: dict[int, ListenSocket],
        conns: dict[int, TcpRow],
        known: tuple | None,
    ) -> Process:
        """known: what the previous sample made of this pid, if the sockets were the same.
        A single-threaded process with the same stat text, fd table and place in the tree
        is the same Process (a multi-threaded one's threads are read anew)."""
        stat = member.stat
        if (
            known is not None
            and known[0] is stat
            and known[1] == member.adopted
            and known[2] == member.readable
            and known[3] == member.fds
            and stat.threads <= 1
        ):
            process = known[4]
        else:
            process = Process(
                pid,
                stat.ppid,
                stat.name,
                stat.state,
                self._threads(stat),
                stat.rss,
                self._fds(member.fds, listen_inodes, conns),
                member.readable,
                member.adopted,
                self._cmdline(stat),
            )
        self._processes[pid] = (stat, member.adopted, member.readable, member.fds, process)
        return process

    def _fds(
        self, inodes: dict[int, int | None], listen_inodes: dict[int, ListenSocket], conns: dict[int, TcpRow]
    ) -> tuple[Fd, ...]:
        fds = []
        for fd, inode in inodes.items():
            if inode is None:
                fds.append(self._made(Fd, fd, "other"))
            elif inode in listen_inodes:
                fds.append(self._made(Fd, fd, "listen", None, listen_inodes[inode].addr, inode, "LISTEN"))
            elif inode in conns:
                row = conns[inode]
                fds.append(self._made(Fd, fd, "conn", row.remote, row.local, inode, row.state))
            else:
                fds.append(self._made(Fd, fd, "other", None, None, inode))
        return tuple(fds)

    def _threads(self, stat: procstat.Stat) -> tuple[Thread, ...]:
        if stat.state == "Z":
            return ()
        if stat.threads <= 1:
            return (self._made(Thread, stat.pid, stat.state, stat.name),)
        threads = []
        for tid in procfs.list_tids(stat.pid):
            task = procstat.read_stat(stat.pid, tid)
            if task is not None:
                threads.append(self._made(Thread, tid, task.state, task.name))
        return tuple(threads)

    def _cmdline(self, stat: procstat.Stat) -> str:
        """Read once per process (pid and start time; the name changes on exec)."""
        key = (stat.pid, stat.start, stat.name)
        if key not in self._cmdlines:
            if len(self._cmdlines) > 4096:
                self._cmdlines.clear()
            self._cmdlines[key] = procfs.read_cmdline(stat.pid)
        return self._cmdlines[key]

    def _serving_threads(self, tree: dict[int, _Member], conns: dict[int, TcpRow]) -> dict[tuple[int, int], int]:
        """(pid, fd) -> the thread blocked reading that connection, in multi-threaded processes."""
        found = {}
        for pid, member in tree.items():
            if member.stat.threads <= 1 or member.stat.state == "Z":
                continue
            conn_fds = {fd for fd, inode in member.fds.items() if inode in conns}
            if not conn_fds:
                continue
            for tid in procfs.list_tids(pid):
                fd = procfs.blocked_in_recv(pid, tid)
                if fd in conn_fds:
                    found[(pid, fd)] = tid
        return found

    def close(self) -> None:
        with self._lock:
            self._drop_netlink()

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _socket_holders(tree: dict[int, _Member]) -> dict[int, list[tuple[int, int]]]:
    """socket inode -> [(pid, fd), ...] over the tree."""
    holders: dict[int, list[tuple[int, int]]] = {}
    for pid, member in tree.items():
        for fd, inode in member.fds.items():
            if inode is not None:
                holders.setdefault(inode, []).append((pid, fd))
    return holders


def _first_holder(tree: dict[int, _Member], holders: list[tuple[int, int]]) -> tuple[int | None, int | None]:
    """The oldest process holding it (for a listening socket: the server, not its children)."""
    if not holders:
        return None, None
    return min(holders, key=lambda h: (tree[h[0]].stat.start, h[0], h[1]))


def _owner(tree: dict[int, _Member], holders: list[tuple[int, int]], root: int) -> tuple[int | None, int | None]:
    """Who serves a connection: the oldest holder other than the root. A fork server's child
    serving connection k was forked before the later children that inherit k's leaked fd;
    the root holds it only because it accepted it (and perhaps forgot to close it)."""
    others = [h for h in holders if h[0] != root]
    return _first_holder(tree, others or holders)


def _conn_state(row: TcpRow) -> str:
    if row.state == "ESTABLISHED":
        return "accepted" if row.inode else "queued"
    if row.state == "SYN_RECV":
        return "syn_recv"
    return "closing"


def _host_matches(listen_host: str, host: str) -> bool:
    return listen_host in WILDCARDS or listen_host == host or (host.startswith("::ffff:") and listen_host == host[7:])


class _Belongs:
    """Whether a connection on a port belongs to one of our listeners, not to another one
    sharing the port number on another address. Remembered per address: a thousand rows
    share a handful."""

    def __init__(self, listening: list[ListenSocket]) -> None:
        self.listening = listening
        self.known: dict[str, bool] = {}

    def __call__(self, local: str) -> bool:
        answer = self.known.get(local)
        if answer is None:
            port = int(local.rsplit(":", 1)[1])
            mine = [sock for sock in self.listening if sock.port == port]
            answer = any(_host_matches(addr_host(sock.addr), addr_host(local)) for sock in mine)
            self.known[local] = answer
        return answer


def _family(addr: str) -> int:
    return socket.AF_INET6 if addr.startswith("[") else socket.AF_INET


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
