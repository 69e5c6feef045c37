"""One process as /proc shows it: threads, fds, syscalls. Pure parsers plus small readers.
(/proc/PID/stat itself is svcviz.procstat's, shared with the servers and the lab.)

Every reader returns None (or an empty result) when the process or fd vanished meanwhile:
processes exit and fds close while we look, and that is normal, not an error.
"""

from __future__ import annotations

import os

from svcviz.procstat import READ_SIZE, read_text


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


def list_processes() -> dict[int, int]:
    """pid -> the inode number of its /proc directory, which tells a process from a later
    one that reuses its pid."""
    with os.scandir("/proc") as entries:
        return {int(entry.name): entry.inode() for entry in entries if entry.name.isdigit()}


def read_tgid(pid: int) -> int | None:
    """The process a task id belongs to: itself for a process, its process for a thread
    (/proc/TID exists for a thread too, though /proc lists only processes)."""
    for line in (read_text(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("Tgid:"):
            return int(line.split()[1])
    return None


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
