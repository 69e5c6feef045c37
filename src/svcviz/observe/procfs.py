"""One process as /proc shows it: stat, threads, fds. Pure parsers plus small readers.

Every reader returns None (or an empty result) when the process or fd vanished meanwhile:
processes exit and fds close while we look, and that is normal, not an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
READ_SIZE = 8192


@dataclass(frozen=True)
class Stat:
    pid: int
    name: str
    state: str
    ppid: int
    threads: int
    start: int  # clock ticks after boot: tells a pid from a later process reusing it
    rss: int  # bytes


def parse_stat(text: str) -> Stat:
    """/proc/PID/stat. The name is in parentheses and may itself hold ") " or spaces."""
    head, _, tail = text.rpartition(")")
    pid, _, name = head.partition(" (")
    fields = tail.split()
    # fields[0] is field 3 of proc(5): state, ppid=4, num_threads=20, starttime=22, rss=24
    return Stat(
        int(pid), name, fields[0], int(fields[1]), int(fields[17]), int(fields[19]), int(fields[21]) * PAGE_SIZE
    )


def read_text(path: str) -> str | None:
    """The whole of a small /proc file; raw os calls, as a sample reads hundreds of them."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, READ_SIZE)
        while len(data) % READ_SIZE == 0 and (more := os.read(fd, READ_SIZE)):  # rarely: a long file
            data += more
        return data.decode(errors="replace")
    except OSError:
        return None  # the process went away while we read
    finally:
        os.close(fd)


def open_file(path: str) -> int | None:
    """An fd to read path again and again (reread); None if it cannot be opened."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def reread(fd: int) -> str | None:
    """A small /proc file kept open, read again from its start: the kernel makes its text
    anew, without the path lookup of another open. The fd stays bound to the process it was
    opened for: None once that one is gone, even if a new process has its pid."""
    try:
        data = os.pread(fd, READ_SIZE, 0)
    except OSError:
        return None
    return data.decode(errors="replace") if data else None


def read_stat(pid: int, tid: int | None = None) -> Stat | None:
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    return stat_of(read_text(path))


def stat_of(text: str | None) -> Stat | None:
    """parse_stat, or None for an empty or cut-short text (the process went away)."""
    if not text:
        return None
    try:
        return parse_stat(text)
    except (ValueError, IndexError):
        return None


def list_processes() -> dict[int, int]:
    """pid -> the inode number of its /proc directory, which tells a process from a later
    one that reuses its pid."""
    with os.scandir("/proc") as entries:
        return {int(entry.name): entry.inode() for entry in entries if entry.name.isdigit()}


def read_cmdline(pid: int) -> str:
    text = read_text(f"/proc/{pid}/cmdline")
    return text.replace("\0", " ").strip() if text else ""


def list_tids(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def socket_inode(link: str) -> int | None:
    """ "socket:[12345]" -> 12345; None for anything that is not a socket."""
    if link.startswith("socket:["):
        return int(link[8:-1])
    return None


class FdTableUnreadable(Exception):
    """The fd table is there but we may not read it (another user's process)."""


def read_fd_sockets(pid: int) -> dict[int, int | None] | None:
    """fd number -> socket inode (None for anything but a socket), in fd order; None if the
    process is gone; FdTableUnreadable if we may not look."""
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except PermissionError:
        raise FdTableUnreadable(f"pid {pid} fds: permission denied") from None
    except OSError:
        return None
    fds = {}
    for fd in sorted(map(int, names)):
        try:
            link = os.readlink(f"{base}/{fd}")
        except OSError:
            continue  # closed between listdir and readlink
        fds[fd] = socket_inode(link)
    return fds


# The syscalls a thread sits in while it waits for a client's bytes: first argument = fd.
# (/proc/PID/task/TID/syscall prints the number, then the arguments in hex.)
RECV_SYSCALLS = {
    "x86_64": {0, 19, 45, 47},  # read, readv, recvfrom, recvmsg
    "aarch64": {63, 65, 207, 212},  # read, readv, recvfrom, recvmsg
}.get(os.uname().machine, set())


def parse_syscall(text: str) -> tuple[int, int] | None:
    """(syscall number, first argument) of a blocked thread; None when running or unknown."""
    fields = text.split()
    if len(fields) < 2 or not fields[0].lstrip("-").isdigit():
        return None
    return int(fields[0]), int(fields[1], 16)


def blocked_in_recv(pid: int, tid: int) -> int | None:
    """The fd thread tid is blocked reading, if it is blocked in a receive."""
    text = read_text(f"/proc/{pid}/task/{tid}/syscall")
    call = parse_syscall(text) if text else None
    if call and call[0] in RECV_SYSCALLS:
        return call[1]
    return None
