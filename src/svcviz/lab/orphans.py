"""Orphans: svcviz is a child subreaper, so what the server orphans (its children, once it
is killed) is reparented to svcviz instead of init, and each one's zombie is ours to reap."""

from __future__ import annotations

import contextlib
import ctypes
import os

from svcviz import procstat
from svcviz.observe.snapshot import Snapshot

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_adopted(spawned: set[int]) -> int:
    """waitpid() the zombies svcviz adopted as subreaper, never one it waits on itself."""
    me = os.getpid()
    reaped = 0
    for stat in procstat.all_stats():
        if stat.zombie and stat.ppid == me and stat.pid not in spawned:
            try:
                os.waitpid(stat.pid, os.WNOHANG)
                reaped += 1
            except ChildProcessError:
                pass
    return reaped


class OrphanReaper:
    """Reaps the adopted orphans that died, a sample at a time.

    Those the observer saw cost nothing to find; a scan of all /proc, for orphans that
    lived and died between two samples, runs once every scan_every samples (it is the
    dearest part of a sample on a big machine).
    """

    def __init__(self, spawned: set[int], scan_every: int) -> None:
        self.spawned = spawned  # the servers svcviz waits on itself: never reaped here
        self.scan_every = max(1, scan_every)
        self._samples = 0

    def reap(self, snapshot: Snapshot) -> None:
        me = os.getpid()
        for process in snapshot.processes:
            if process.zombie and process.ppid == me and process.pid not in self.spawned:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(process.pid, os.WNOHANG)
        self._samples += 1
        if self._samples % self.scan_every == 0:
            reap_adopted(self.spawned)
