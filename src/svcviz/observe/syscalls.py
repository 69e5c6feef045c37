"""What a thread is blocked in: /proc/PID/task/TID/syscall, its number named.

The kernel prints the number of the call a sleeping thread is in and its six arguments in
hex ("232 0x5 0x7ffd... 0x3ff ..."), "running" for a thread on a CPU, and "-1 SP PC" for
one blocked outside any call. Numbers differ per architecture: one table, the calls servers
wait in and a few they pass through, for x86_64 and aarch64 (asm-generic, which has no
plain poll/select/epoll_wait/pause: its libc uses ppoll, pselect6, epoll_pwait, ppoll).
"""

from __future__ import annotations

import os
from typing import NamedTuple

# name: (x86_64 number, aarch64 number or None, first argument is an fd)
CALLS: dict[str, tuple[int, int | None, bool]] = {
    "read": (0, 63, True),
    "write": (1, 64, True),
    "readv": (19, 65, True),
    "writev": (20, 66, True),
    "pread64": (17, 67, True),
    "pwrite64": (18, 68, True),
    "recvfrom": (45, 207, True),
    "recvmsg": (47, 212, True),
    "recvmmsg": (299, 243, True),
    "sendto": (44, 206, True),
    "sendmsg": (46, 211, True),
    "sendmmsg": (307, 269, True),
    "sendfile": (40, 71, True),
    "splice": (275, 76, True),
    "accept": (43, 202, True),
    "accept4": (288, 242, True),
    "connect": (42, 203, True),
    "epoll_wait": (232, None, True),
    "epoll_pwait": (281, 22, True),
    "epoll_pwait2": (441, 441, True),
    "io_uring_enter": (426, 426, True),
    "flock": (73, 32, True),
    "fsync": (74, 82, True),
    "fdatasync": (75, 83, True),
    "ioctl": (16, 29, True),
    "fcntl": (72, 25, True),
    "close": (3, 57, True),
    "lseek": (8, 62, True),
    "select": (23, None, False),
    "pselect6": (270, 72, False),
    "poll": (7, None, False),
    "ppoll": (271, 73, False),
    "futex": (202, 98, False),
    "futex_waitv": (449, 449, False),
    "wait4": (61, 260, False),
    "waitid": (247, 95, False),
    "clock_nanosleep": (230, 115, False),
    "nanosleep": (35, 101, False),
    "pause": (34, None, False),
    "rt_sigsuspend": (130, 133, False),
    "rt_sigtimedwait": (128, 137, False),
    "restart_syscall": (219, 128, False),  # a sleep resumed after a signal (SIGSTOP, SIGCONT)
    "io_getevents": (208, 4, False),
    "msgrcv": (70, 188, False),
    "semop": (65, 193, False),
    "semtimedop": (220, 192, False),
    "mq_timedreceive": (243, 183, False),
    "sched_yield": (24, 124, False),
    "getrandom": (318, 278, False),
    "openat": (257, 56, False),
    "exit_group": (231, 94, False),
}

# The calls that wait for "any of these fds" (the event loop's wait).
EVENT_WAITS = frozenset({"epoll_wait", "epoll_pwait", "epoll_pwait2", "select", "pselect6", "poll", "ppoll"})
ACCEPTS = frozenset({"accept", "accept4"})
RECEIVES = frozenset({"read", "readv", "recvfrom", "recvmsg", "recvmmsg", "pread64"})
SENDS = frozenset({"write", "writev", "sendto", "sendmsg", "sendmmsg", "sendfile", "pwrite64", "splice"})
FORKS = frozenset({"clone", "clone3", "fork", "vfork"})
EXITS = frozenset({"exit", "exit_group"})


def table(machine: str) -> dict[int, tuple[str, bool]]:
    """number -> (name, takes an fd first) for one architecture (os.uname().machine)."""
    column = {"x86_64": 0, "aarch64": 1, "arm64": 1}.get(machine)
    if column is None:
        return {}
    numbered = {}
    for name, (x86_64, aarch64, takes_fd) in CALLS.items():
        number = x86_64 if column == 0 else aarch64
        if number is not None:
            numbered[number] = (name, takes_fd)
    return numbered


NUMBERS = table(os.uname().machine)


class Call(NamedTuple):
    """One reading of a thread's syscall file."""

    name: str | None  # None: running, outside a call, or a number not in the table
    fd: int | None = None  # the first argument, for a call that takes an fd
    number: int | None = None  # the raw number when blocked in a call (-1 outside any)
    running: bool = False


RUNNING = Call(None, running=True)
UNKNOWN = Call(None)


def parse(text: str, numbers: dict[int, tuple[str, bool]] = NUMBERS) -> Call:
    """One /proc/PID/task/TID/syscall text as a Call."""
    fields = text.split()
    if not fields:
        return UNKNOWN
    if fields[0] == "running":
        return RUNNING
    try:
        number = int(fields[0])
    except ValueError:
        return UNKNOWN
    known = numbers.get(number)
    if known is None:
        return Call(None, None, number)
    name, takes_fd = known
    fd = None
    if takes_fd and len(fields) > 1:
        try:
            fd = int(fields[1], 16)
        except ValueError:
            fd = None
        if fd is not None and fd >= 1 << 31:  # an int argument: AT_FDCWD and friends come as 0xffff...ff9c
            fd = None
    return Call(name, fd, number)
