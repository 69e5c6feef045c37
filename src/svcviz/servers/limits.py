"""Bounds on a server: fds, memory, and svcviz's own process and thread caps.

RLIMIT_NPROC does not bind root, so a fork server here counts its own children and stops
forking at the cap: the lecture's warning is that you must always be able to start a shell.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import threading
import time
from types import FrameType

from svcviz import procstat
from svcviz.servers.config import ServerError
from svcviz.servers.notice import CAP, NOTE, notify

M_ARENA_MAX = -8  # mallopt's parameter (malloc.h)
MB = 1024 * 1024
PR_SET_PDEATHSIG = 1


def limit_fds(max_fds: int) -> None:
    """RLIMIT_NOFILE: past it, accept() fails with EMFILE."""
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    if max_fds <= highest + 2:
        raise ServerError(f"--max-fds {max_fds}: the server already uses fds up to {highest}")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = max_fds if hard == resource.RLIM_INFINITY else min(max_fds, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def limit_memory(max_mb: int) -> None:
    """RLIMIT_AS: every thread's stack is address space, so thread creation fails past it."""
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    if max_mb * MB <= current + 8 * MB:
        raise ServerError(
            f"--max-memory {max_mb}: the server already uses {current // MB} MB "
            f"of address space; give it more than {current // MB + 8}"
        )
    # glibc reserves 64 MB of address space per thread for its own malloc arena; with one
    # arena, as in the lecture's C, a thread costs its stack and the limit counts stacks.
    ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    resource.setrlimit(resource.RLIMIT_AS, (max_mb * MB, max_mb * MB))


class Children:
    """The children a server forked, counted from the kernel's side (zombies included:
    they hold a process slot too)."""

    RECHECK = 0.25  # room can come without a SIGCHLD: SIGUSR2 reaping the zombies of `default`

    def __init__(self, cap: int, what: str) -> None:
        self.cap = cap
        self.what = what
        # Who the children must not outlive: this server, and whoever started it.
        self.server, self.keeper = os.getpid(), os.getppid()

    def count(self) -> int:
        # One read of the kernel's list: a stat read per child cost a 200-child server
        # 4,000 reads a second while it waited at its cap.
        return len(procstat.children(self.server))

    def wait_for_room(self) -> None:
        """Block while the cap is reached, woken by SIGCHLD; say so once each time it is.

        SIGCHLD is blocked meanwhile, so the kernel keeps it for sigtimedwait() whatever
        its disposition (it discards an ignored signal only while unblocked), and the
        server sleeps until a child exits instead of polling. Taken here, the signal does
        not reach the handler: its work (reap mode's waitpid) is done here instead."""
        if self.count() < self.cap:
            return
        notify(CAP, f"{self.what} reached ({self.cap}); waiting for a child to go")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            while self.count() >= self.cap:
                if signal.sigtimedwait({signal.SIGCHLD}, self.RECHECK) is not None:
                    handler = signal.getsignal(signal.SIGCHLD)
                    if callable(handler):
                        handler(signal.SIGCHLD, None)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        notify(NOTE, f"below the {self.what} again")

    def child_setup(self) -> None:
        """First thing in a forked child: the signals a new process has (the server's
        handlers are not the child's job), and death with the server's starter."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_keeper(self.server, self.keeper)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """sig for this process when its parent dies (PR_SET_PDEATHSIG): a preexec_fn for what
    svcviz starts (a server, strace), so that nothing it started outlives it."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _die_with_keeper(server: int, keeper: int) -> None:
    """In a child: outlive the server only as long as whoever started the server.

    PR_SET_PDEATHSIG is not inherited across fork, so each child asks for its own. It fires
    when the server dies and again when each subreaper that adopted the child dies. The
    first time, an orphan adopted by the server's starter (svcviz, a subreaper) lives on:
    that is the orphan lesson. Adopted by anyone else (init, or after svcviz died): die.
    """

    def parent_died(signum: int, frame: FrameType | None) -> None:
        if os.getppid() != keeper:
            os._exit(1)

    signal.signal(signal.SIGHUP, parent_died)
    die_with_parent(signal.SIGHUP)
    if os.getppid() != server:  # the server died before we asked: it did not tell us
        parent_died(signal.SIGHUP, None)


def child_pids() -> list[int]:
    """This process's children, as the kernel lists them (no bookkeeping to get wrong)."""
    return procstat.children(os.getpid())


def stop_children(grace: float = 1.0) -> None:
    """SIGTERM every child, SIGKILL what is left after grace, and reap them all."""
    for pid in child_pids():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while child_pids() and time.monotonic() < deadline:
        reap_all()
        time.sleep(0.02)
    for pid in child_pids():
        _signal(pid, signal.SIGKILL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # so waitpid() below sees them exit
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def reap_all() -> int:
    """waitpid() every child that has exited; how many were reaped."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)  # syscall: wait
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped += 1


class ThreadCap:
    """At most cap threads in this process, the main thread included."""

    POLL = 0.05

    def __init__(self, cap: int) -> None:
        self.cap = cap

    def wait_for_room(self) -> None:
        if threading.active_count() < self.cap:
            return
        notify(CAP, f"thread cap reached ({self.cap}); waiting for a thread to finish")
        while threading.active_count() >= self.cap:
            time.sleep(self.POLL)
        notify(NOTE, "below the thread cap again")
