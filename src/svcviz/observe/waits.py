"""What a thread waits in, as one line for a screen: `accept4(3 listen)`, `read(4 <- 127.0.0.1:40000)`.

A pure function of the snapshot's data: the call from the thread, its fd named from the
process's fd table (the listening socket, the connection's client, the fd's link text).
"""

from __future__ import annotations

from svcviz.observe.snapshot import Fd, Process, Thread

# readlink text -> the short word for it
LINK_WORDS = {
    "anon_inode:[eventpoll]": "epoll",
    "anon_inode:[eventfd]": "eventfd",
    "anon_inode:[signalfd]": "signalfd",
    "anon_inode:[timerfd]": "timerfd",
    "anon_inode:[io_uring]": "io_uring",
    "anon_inode:inotify": "inotify",
}


def fd_word(fd: Fd) -> str:
    """What one fd is, in a word or two: `listen`, `<- 127.0.0.1:40000`, `epoll`, `pipe`, `/dev/null`."""
    if fd.kind == "listen":
        return "listen"
    if fd.kind == "conn":
        return f"<- {fd.peer}" if fd.peer else "conn"
    link = fd.link
    if link in LINK_WORDS:
        return LINK_WORDS[link]
    if link.startswith("pipe:"):
        return "pipe"
    if link.startswith("socket:"):
        return "socket"
    return link or "?"


def wait_text(thread: Thread, process: Process) -> str:
    """The thread's wait for a screen: `running`, `futex`, `accept4(3 listen)`, `syscall 999`,
    `unreadable` (the kernel refused: another user's process, not root), `?` (not known)."""
    if thread.state == "R" or thread.state == "Z":
        return "running" if thread.state == "R" else "exited"
    if not thread.syscall_readable:
        return "unreadable"
    if thread.syscall is None:
        if thread.syscall_nr is None:
            return "?"
        return "not in a call" if thread.syscall_nr < 0 else f"syscall {thread.syscall_nr}"
    if thread.syscall_fd is None:
        return thread.syscall
    fd = next((f for f in process.fds if f.fd == thread.syscall_fd), None)
    return f"{thread.syscall}({thread.syscall_fd} {fd_word(fd)})" if fd else f"{thread.syscall}({thread.syscall_fd})"
