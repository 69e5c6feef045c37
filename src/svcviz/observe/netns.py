"""Network namespaces: which one a process is in, and sockets made inside another one.

Sockets live in network namespaces. /proc/PID/net/tcp{,6} shows PID's namespace; a netlink
socket answers for the namespace it was made in, and so does a TCP socket connect()
from: to ask sock_diag about a container's sockets, or to be its client, the socket is made
inside it. setns(2) moves only the calling thread, so a short-lived thread enters the
namespace, makes the socket, and goes back (os.setns is Python 3.12+: ctypes here). It
needs CAP_SYS_ADMIN; without it /proc/PID/net still gives the tables (no backlog).
"""

from __future__ import annotations

import os
import socket
import threading
from typing import NamedTuple

from svcviz.observe.sockets import TcpRow, read_netstat, read_proc_net_tcp, read_tcp_mib

TYPE_CHECKING = False  # typing is not imported at run time: `watch --once` starts fast
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from svcviz.observe.sockdiag import SockDiag

    T = TypeVar("T")

CLONE_NEWNET = 0x40000000
EPERM = 1
NETNS_DIR = "/run/netns"  # where `ip netns add NAME` keeps its namespaces
NEEDS_CAP = "entering another network namespace needs CAP_SYS_ADMIN (run as root)"


class NamespaceError(OSError):
    """A namespace that cannot be named or entered: one line for the user (an OSError, as
    the socket() it stands in for would raise)."""


def inode_of(path: str) -> int | None:
    """The namespace's inode number (what `ls -L -i` and `lsns` print), None if unreadable
    (another user's process: its ns links need ptrace access) or gone."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def own_inode() -> int | None:
    return inode_of("/proc/self/ns/net")


def table_inode(pid: int | str) -> int | None:
    """The inode of /proc/PID/net/tcp: one per network namespace, and any user may stat
    it (the namespace's own inode needs ptrace access to PID): how a user tells, of another
    user's process, whether it shares our namespace."""
    return inode_of(f"/proc/{pid}/net/tcp")


class NetNs(NamedTuple):
    """A network namespace other than ours. path: what setns opens; pid: a process in it,
    whose /proc/PID/net has its tables (None: enter it to read them); label: its `ip netns`
    name, or the hostname of the container a process of it runs in."""

    path: str
    inode: int | None  # None: not ours to read (another user's process), though not our namespace
    pid: int | None = None
    label: str | None = None

    @property
    def title(self) -> str:
        """How the screen names it: "netns 4026532290 (web1)"."""
        if self.inode is None:
            return f"the network namespace of pid {self.pid}"
        return f"netns {self.inode}" + (f" ({self.label})" if self.label else "")

    def run(self, job: Callable[[], T]) -> T:
        """job() on a thread inside this namespace; NamespaceError if it cannot be entered."""
        return run_in(self.path, job)

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A socket made inside this namespace (it stays there for good)."""
        return self.run(lambda: socket.socket(family, kind, proto))

    def tcp_rows(self, ports: frozenset[int] | None = None) -> list[TcpRow]:
        """Its /proc/net/tcp{,6} rows: through a process in it (any user may read those),
        else from a thread inside it."""
        if self.pid is not None:
            return read_proc_net_tcp(ports, base=f"/proc/{self.pid}/net")
        return self.run(lambda: read_proc_net_tcp(ports, base="/proc/thread-self/net"))


def of_pid(pid: int) -> NetNs | None:
    """The namespace of pid when it is not ours; None when it is ours, or cannot be told
    (another user's process)."""
    path = f"/proc/{pid}/ns/net"
    inode = inode_of(path)
    if inode is None:  # another user's: its tables tell whether it is ours
        tables = table_inode(pid)
        return None if tables is None or tables == table_inode("self") else NetNs(path, None, pid)
    if inode == own_inode():
        return None
    return NetNs(path, inode, pid, _label(inode, pid))


def named(text: str) -> NetNs | None:
    """--netns PATH|PID|NAME: a pid, a namespace file (/run/netns/NAME, /proc/PID/ns/net)
    or an `ip netns` name. None when it is our own namespace."""
    if text.isdigit():
        pid = int(text)
        if not os.path.isdir(f"/proc/{pid}"):
            raise NamespaceError(f"--netns {pid}: no process {pid}")
        return of_pid(pid)
    path = text if "/" in text else os.path.join(NETNS_DIR, text)
    inode = inode_of(path)
    if inode is None:
        raise NamespaceError(f"--netns {text}: cannot read {path} (no such namespace, or not ours to read)")
    if inode == own_inode():
        return None
    inside = _a_process_in(inode)
    return NetNs(path, inode, inside, _label(inode, inside))


def run_in(path: str, job: Callable[[], T]) -> T:
    """job() on a helper thread that has entered the namespace at path, then left it."""
    done: list[T] = []
    failed: list[BaseException] = []

    def inside() -> None:
        try:
            done.append(_entered(path, job))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=inside, name="svcviz-netns", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return done[0]


def _entered(path: str, job: Callable[[], T]) -> T:
    import ctypes  # only when a namespace is entered

    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = _open_ns(path)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                if errno == EPERM:
                    raise NamespaceError(NEEDS_CAP)
                raise NamespaceError(f"cannot enter the network namespace {path}: {os.strerror(errno)}")
        finally:
            os.close(target)
        try:
            return job()
        finally:
            # Back home: the thread ends soon, but nothing it does after this may happen
            # in the other namespace.
            if libc.setns(home, CLONE_NEWNET) != 0:
                os._exit(70)  # a thread stuck in a foreign namespace would lie from then on
    finally:
        os.close(home)


def _open_ns(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError:  # another user's process: we could not setns into it either
        raise NamespaceError(NEEDS_CAP) from None
    except OSError as exc:
        raise NamespaceError(f"cannot open the network namespace {path}: {exc.strerror}") from None


def _a_process_in(inode: int) -> int | None:
    for pid in _pids():
        if inode_of(f"/proc/{pid}/ns/net") == inode:
            return pid
    return None


def _pids() -> list[int]:
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())


def _label(inode: int, pid: int | None) -> str | None:
    """Its `ip netns` name if it has one, else the hostname of pid's container (when pid
    has its own UTS namespace: an `ip netns exec` process shares ours, and our hostname
    would mislabel it)."""
    try:
        names = sorted(os.listdir(NETNS_DIR))
    except OSError:
        names = []
    for name in names:
        if inode_of(os.path.join(NETNS_DIR, name)) == inode:
            return name
    if pid is None or inode_of(f"/proc/{pid}/ns/uts") in (None, inode_of("/proc/self/ns/uts")):
        return None
    try:
        with open(f"/proc/{pid}/root/etc/hostname") as f:
            return f.read(64).strip().encode("ascii", "replace").decode() or None
    except (OSError, UnicodeDecodeError):
        return None


def listeners_elsewhere(port: int) -> list[tuple[NetNs, TcpRow]]:
    """Listening sockets on port in the other namespaces on this machine: each namespace's
    /proc/PID/net/tcp{,6} read once, through the first process seen in it (namespaces told
    apart by their tables' inode, which any user may read)."""
    seen: set[int | None] = {table_inode("self"), None}
    found = []
    for pid in _pids():
        tables = table_inode(pid)
        if tables in seen:
            continue
        seen.add(tables)
        inode = inode_of(f"/proc/{pid}/ns/net")
        try:
            rows = read_proc_net_tcp(frozenset({port}), base=f"/proc/{pid}/net")
        except OSError:
            continue
        listening = [row for row in rows if row.state == "LISTEN" and row.local_port == port]
        if listening:
            ns = NetNs(f"/proc/{pid}/ns/net", inode, pid, _label(inode, pid) if inode else None)
            found += [(ns, row) for row in listening]
    return found


class Place:
    """Where an observer looks: our own network namespace (ns None) or the target's. It
    makes the sock_diag socket there, reads the /proc tables there, and says what it
    could not do (notes: one line each, for the user)."""

    def __init__(self, ns: NetNs | None) -> None:
        self.ns = ns
        self.notes: list[str] = []
        self._base = f"/proc/{ns.pid}/net" if ns is not None and ns.pid is not None else "/proc/net"

    @classmethod
    def of(cls, *, pid: int | None, netns: str | None) -> Place:
        """--netns when given (NamespaceError if it names none), else the namespace of pid."""
        if netns is not None:
            return cls(named(netns))
        return cls(of_pid(pid) if pid is not None else None)

    def sock_diag(self) -> SockDiag | None:
        """A SockDiag answering for this namespace, or None (then the /proc tables)."""
        from svcviz.observe.sockdiag import NETLINK_SOCK_DIAG, SockDiag

        ns = self.ns
        try:
            if ns is None:
                return SockDiag()
            return SockDiag(ns.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG))
        except NamespaceError as exc:
            assert ns is not None  # our own namespace needs no entering
            if ns.pid is not None:
                self.notes.append(f"{ns.title}: {exc}: showing what /proc/{ns.pid}/net gives (no backlog)")
            else:  # a named namespace, none of whose processes we may read
                self.notes.append(f"{ns.title}: {exc}; or name it by a pid in it (--netns PID)")
        except OSError:
            pass  # no sock_diag here: /proc/net/tcp will do, slower
        return None

    def tcp_rows(self, ports: frozenset[int] | None = None) -> list[TcpRow]:
        if self.ns is None:
            return read_proc_net_tcp(ports)
        try:
            return self.ns.tcp_rows(ports)
        except NamespaceError:
            return []

    def netstat(self) -> tuple[int, int]:
        return read_netstat(self._base)

    def tcp_mib(self) -> str | None:
        return read_tcp_mib(self._base)

    def nothing_on(self, port: int) -> str:
        """Why nothing was found on port, and where it is when it listens elsewhere."""
        if self.ns is not None:
            return f"nothing is listening on port {port} in {self.ns.title}"
        elsewhere = listeners_elsewhere(port)
        if not elsewhere:
            return f"nothing is listening on port {port}"
        found = ", ".join(f"{row.local} in {ns.title} (pid {ns.pid})" for ns, row in elsewhere[:3])
        return (
            f"nothing is listening on port {port} in this network namespace, but {found} is: "
            f"add --netns {elsewhere[0][0].pid}"
        )
