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
    return command_of(read_text(f"/proc/{pid}/cmdline") or "")


def command_of(raw: str) -> str:
    """/proc/PID/cmdline's NUL-separated arguments as one line."""
    return raw.replace("\0", " ").strip()


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


def read_fd_sockets(pid: int, links: dict[int, str] | None = None) -> dict[int, int | None] | None:
    """fd number -> socket inode (None for anything but a socket), in fd order; None if the
    process is gone; FdTableUnreadable if we may not look. links, when given, gets every
    fd's readlink text that is not a socket ("pipe:[123]", "anon_inode:[eventpoll]")."""
    try:  # each link read relative to the open directory: no walk through /proc per fd
        fd_dir = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except PermissionError:
        raise FdTableUnreadable(f"pid {pid} fds: permission denied") from None
    except OSError:
        return None
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return None  # gone while we looked
    else:
        fds = {}
        for name in sorted(names, key=int):
            try:
                link = os.readlink(name, dir_fd=fd_dir)
            except OSError:
                continue  # closed between listdir and readlink
            inode = fds[int(name)] = socket_inode(link)
            if links is not None and inode is None:
                links[int(name)] = link
        return fds
    finally:
        os.close(fd_dir)


def sockets_held(pid: int, wanted: dict[str, int]) -> set[int] | None:
    """Which of the wanted sockets (readlink text "socket:[INODE]" -> INODE) the process
    holds; None if it is gone; FdTableUnreadable if we may not look. Finding a listener's
    holders reads every fd of the machine, as `ss -p` does: each link is read relative to
    the open fd directory (no path walk through /proc per fd) and looked up as it is."""
    try:
        fd_dir = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    except PermissionError:
        raise FdTableUnreadable(f"pid {pid} fds: permission denied") from None
    except OSError:
        return None
    try:
        held = set()
        for name in os.listdir(fd_dir):
            try:
                inode = wanted.get(os.readlink(name, dir_fd=fd_dir))
            except OSError:
                continue  # closed between listdir and readlink
            if inode is not None:
                held.add(inode)
        return held
    except OSError:
        return None  # gone while we read
    finally:
        os.close(fd_dir)


def read_real_uid(pid: int) -> int | None:
    """The real uid (the first of Uid: in /proc/PID/status): a worker that setuid()s after
    the fork shows it here, and its /proc directory may stay root's (not dumpable)."""
    text = read_text(f"/proc/{pid}/status")
    if not text:
        return None
    start = text.find("\nUid:")
    if start < 0:
        return None
    fields = text[start + 5 : text.find("\n", start + 1)].split()
    return int(fields[0]) if fields else None


def read_cmdline_raw(pid: int) -> str:
    """/proc/PID/cmdline as it is: NUL-separated arguments, or one title a process wrote."""
    return read_text(f"/proc/{pid}/cmdline") or ""


def read_syscall(pid: int, tid: int) -> str:
    """/proc/PID/task/TID/syscall ("" when the thread is gone); PermissionError when the
    kernel refuses (it asks for ptrace rights over the thread)."""
    try:
        fd = os.open(f"/proc/{pid}/task/{tid}/syscall", os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError:
        raise
    except OSError:
        return ""
    try:
        return os.read(fd, 512).decode()
    except PermissionError:
        raise
    except OSError:
        return ""
    finally:
        os.close(fd)


def parse_epoll_fdinfo(text: str) -> list[tuple[int, int]]:
    """/proc/PID/fdinfo/EPFD of an epoll instance: [(watched fd, its inode)], one per
    "tfd: 4 events: 2019 data: ... pos:0 ino:16e75e sdev:9" line (inode in hex)."""
    watched = []
    for line in text.splitlines():
        if line.startswith("tfd:"):
            fields = line.split()
            ino = next((f[4:] for f in fields if f.startswith("ino:")), None)
            if len(fields) > 1 and ino is not None:
                try:
                    watched.append((int(fields[1]), int(ino, 16)))
                except ValueError:
                    continue
    return watched


def read_epoll_watched(pid: int, epfd: int) -> list[tuple[int, int]]:
    """What the epoll instance at pid's fd epfd watches ([] when gone or unreadable)."""
    return parse_epoll_fdinfo(read_text(f"/proc/{pid}/fdinfo/{epfd}") or "")


def parse_fdinfo_flags(text: str) -> int | None:
    """The open flags of /proc/PID/fdinfo/FD ("flags:\t0100001", octal): O_WRONLY (01) tells
    a pipe's write end from its read end, which the readlink text ("pipe:[123]") does not."""
    for line in text.splitlines():
        if line.startswith("flags:"):
            try:
                return int(line.split()[1], 8)
            except (IndexError, ValueError):
                return None
    return None


def read_fd_flags(pid: int, fd: int) -> int | None:
    return parse_fdinfo_flags(read_text(f"/proc/{pid}/fdinfo/{fd}") or "")


def parse_io(text: str) -> tuple[int, int] | None:
    """/proc/PID/io: (rchar, wchar), the bytes the process has passed to read()/write() and
    friends, whatever the fd: which cat wrote a line, which process read it."""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        return int(fields["rchar"]), int(fields["wchar"])
    except (KeyError, ValueError):
        return None


def read_io(pid: int) -> tuple[int, int] | None:
    """parse_io of the process; None when gone or unreadable (another user's process)."""
    return parse_io(read_text(f"/proc/{pid}/io") or "")
