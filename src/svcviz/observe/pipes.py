"""A pipeline as the kernel holds it: its processes, what their fds 0, 1 and 2 are, and for
each pipe who writes it, who reads it and how many bytes wait in it.

Two processes share a pipe when their fds link to the same `pipe:[inode]`; which end an fd
is comes from its open flags (fdinfo). The bytes waiting are FIONREAD on the pipe: fdinfo
does not tell a pipe's fill, so the pipe is opened anew through /proc/PID/fd/N, read side
and non-blocking, asked, and closed at once. It is never read from: a read would take a
line from its reader.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from collections.abc import Iterable
from typing import NamedTuple

from svcviz import procstat
from svcviz.observe import procfs, syscalls

STANDARD = (0, 1, 2)


class End(NamedTuple):
    """One fd of a process: what it is, and for a pipe which end."""

    fd: int
    link: str  # the readlink text: "pipe:[123]", "/dev/pts/3", "" when the fd is closed
    kind: str  # pipe, tty, null, file, socket, other, closed
    pipe: int | None = None  # the pipe's inode
    writes: bool = False  # opened for writing (the pipe's write end)


class Member(NamedTuple):
    """One process of the pipeline."""

    pid: int
    ppid: int
    name: str  # comm
    command: str  # the cmdline, arguments joined by spaces (untrusted text)
    state: str  # R, S, T (stopped), ...
    call: str  # the call it is blocked in, "write(1)", "read(0)"; "" when running or not known
    io: tuple[int, int] | None  # bytes read, bytes written (/proc/PID/io); None when unreadable
    ends: tuple[End, ...]  # fds 0, 1, 2, then every other pipe fd


class Pipe(NamedTuple):
    inode: int
    writers: tuple[tuple[int, int], ...]  # (pid, fd) of each write end in the pipeline
    readers: tuple[tuple[int, int], ...]
    waiting: int | None  # bytes queued in it; None when it could not be opened (permission)
    size: int | None  # its capacity (F_GETPIPE_SZ): 65536 by default on Linux


class PipelineView(NamedTuple):
    members: tuple[Member, ...]  # by pid
    pipes: tuple[Pipe, ...]  # in the order they first appear in members' fds


def kind_of(link: str) -> str:
    if not link:
        return "closed"
    if link.startswith("pipe:["):
        return "pipe"
    if link.startswith("socket:["):
        return "socket"
    if link == "/dev/null":
        return "null"
    if link == "/dev/tty" or link.startswith(("/dev/pts/", "/dev/tty")):
        return "tty"
    if link.startswith("/"):
        return "file"
    return "other"


def pipe_inode(link: str) -> int | None:
    """ "pipe:[12345]" -> 12345; None for anything that is not a pipe."""
    return int(link[6:-1]) if link.startswith("pipe:[") and link.endswith("]") else None


def _end(pid: int, fd: int, link: str) -> End:
    inode = pipe_inode(link)
    flags = procfs.read_fd_flags(pid, fd) if inode is not None else None
    return End(fd, link, kind_of(link), inode, bool(flags is not None and flags & (os.O_WRONLY | os.O_RDWR)))


def _ends(pid: int) -> tuple[End, ...] | None:
    links: dict[int, str] = {}
    try:
        sockets = procfs.read_fd_sockets(pid, links)
    except procfs.FdTableUnreadable:
        sockets = {}
    if sockets is None:
        return None
    for fd, inode in sockets.items():
        if inode is not None:
            links[fd] = f"socket:[{inode}]"
    standard = [_end(pid, fd, links.get(fd, "")) for fd in STANDARD]
    other_pipes = [_end(pid, fd, link) for fd, link in sorted(links.items()) if fd > 2 and pipe_inode(link)]
    return (*standard, *other_pipes)


def _call(pid: int, state: str) -> str:
    if state not in ("S", "D"):
        return ""
    try:
        call = syscalls.parse(procfs.read_syscall(pid, pid))
    except PermissionError:
        return ""
    if call.name is None:
        return ""
    return f"{call.name}({call.fd})" if call.fd is not None else call.name


def member(pid: int) -> Member | None:
    """The process as the pipeline view shows it; None once it is gone (or a zombie: it holds no fds)."""
    stat = procstat.read_stat(pid)
    if stat is None or stat.zombie:
        return None
    ends = _ends(pid)
    if ends is None:
        return None
    return Member(
        pid,
        stat.ppid,
        stat.name,
        procfs.read_cmdline(pid),
        stat.state,
        _call(pid, stat.state),
        procfs.read_io(pid),
        ends,
    )


def pipe_fill(pid: int, fd: int) -> tuple[int, int]:
    """(bytes waiting, capacity) of the pipe at pid's fd. Opened on the read side (a second
    writer, however briefly, would hold off its reader's EOF), non-blocking, and closed
    before anything is read. PermissionError when we may not open another user's fds;
    another OSError when the fd is gone."""
    probe = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        waiting = struct.unpack("i", fcntl.ioctl(probe, termios.FIONREAD, b"\0\0\0\0"))[0]
        return waiting, fcntl.fcntl(probe, fcntl.F_GETPIPE_SZ)
    finally:
        os.close(probe)


def _pipe(inode: int, holders: list[tuple[int, End]]) -> Pipe:
    waiting: int | None = None
    size: int | None = None
    for pid, end in holders:
        try:
            waiting, size = pipe_fill(pid, end.fd)
            break
        except PermissionError:
            break  # every holder is as closed to us as this one
        except OSError:
            continue  # this holder closed it or exited meanwhile: ask the next
    return Pipe(
        inode,
        tuple((pid, end.fd) for pid, end in holders if end.writes),
        tuple((pid, end.fd) for pid, end in holders if not end.writes),
        waiting,
        size,
    )


def look(pids: Iterable[int]) -> PipelineView:
    """The pipeline of these processes (those gone meanwhile are left out)."""
    members = [m for m in map(member, sorted(set(pids))) if m is not None]
    holders: dict[int, list[tuple[int, End]]] = {}
    for m in members:
        for end in m.ends:
            if end.pipe is not None:
                holders.setdefault(end.pipe, []).append((m.pid, end))
    return PipelineView(tuple(members), tuple(_pipe(inode, held) for inode, held in holders.items()))
