"""/proc/PID/stat, parsed in this one place (and who a process's children are): the bottom
of the layering, imported by all.

The servers (counting their children), the lab (its session, the zombies it adopted), the
observer, the benchmarks and the tests all read the same line; each names the fields it
wants instead of counting to a field index of its own. It imports nothing of svcviz.

Every reader returns None (or skips the process) when it vanished meanwhile: processes
exit while we look, and that is normal, not an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")  # the unit of utime, stime, cutime, cstime and start
READ_SIZE = 8192


class Stat(NamedTuple):
    """The fields of proc(5) svcviz uses, under the names of proc(5) where they are plain.

    Immutable, with named fields; a NamedTuple rather than a frozen dataclass because the
    observer parses hundreds a sample, and a frozen dataclass's __init__ (one
    object.__setattr__ a field) costs 1.6x as much (timeit, 13 fields). Read it by name.
    """

    pid: int
    name: str  # comm: the first 15 bytes of the program name
    state: str  # R running, S sleeping, D disk wait, Z zombie, T stopped...
    ppid: int
    pgrp: int
    session: int
    utime: int  # clock ticks of CPU in user mode, all threads
    stime: int  # ... in kernel mode
    cutime: int  # user ticks of the children it has reaped
    cstime: int  # kernel ticks of the children it has reaped
    threads: int  # num_threads
    start: int  # starttime, ticks after boot: tells a pid from a later process reusing it
    rss: int  # bytes

    @property
    def zombie(self) -> bool:
        return self.state == "Z"


def parse_stat(text: str) -> Stat:
    """One /proc/PID/stat line. The name is in parentheses and may itself hold ") " or spaces,
    so the fields are counted from the last ")"."""
    head, _, tail = text.rpartition(")")
    pid, _, name = head.partition(" (")
    f = tail.split()
    # f[0] is field 3 of proc(5): state; ppid=4, pgrp=5, session=6, utime=14, stime=15,
    # cutime=16, cstime=17, num_threads=20, starttime=22, rss=24 (pages)
    return Stat(
        int(pid),
        name,
        f[0],
        int(f[1]),
        int(f[2]),
        int(f[3]),
        int(f[11]),
        int(f[12]),
        int(f[13]),
        int(f[14]),
        int(f[17]),
        int(f[19]),
        int(f[21]) * PAGE_SIZE,
    )


def stat_of(text: str | None) -> Stat | None:
    """parse_stat, or None for an empty or cut-short text (the process went away)."""
    if not text:
        return None
    try:
        return parse_stat(text)
    except (ValueError, IndexError):
        return None


def read_text(path: str) -> str | None:
    """The whole of a small /proc file; raw os calls, as an observer sample reads hundreds."""
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


def read_stat(pid: int | str, tid: int | None = None) -> Stat | None:
    """The stat of process pid (or of its thread tid); None once it is gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    return stat_of(read_text(path))


def all_stats() -> Iterator[Stat]:
    """The stat of every process on the machine (those that exit meanwhile are skipped)."""
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := read_stat(name)) is not None:
            yield stat


def children(pid: int) -> list[int]:
    """pid's children, zombies included (the kernel's /proc/PID/task/TID/children of each
    of its threads: readable by anyone, one read a thread instead of a stat per process)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        text = read_text(f"/proc/{pid}/task/{tid}/children")
        found += [int(child) for child in text.split()] if text else []
    return found


def descendants(pid: int) -> list[int]:
    """pid and every process below it, parents before their children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        found.append(current)
        todo += children(current)
    return found
