"""The kernel's own syscall tracepoints (tracefs), for a server tree: no ptrace, no stops.

    tracer = KernelTracer.attach([4242])   # every thread of these processes, and their children
    await tracer.start()
    async for event in tracer.events():   # TraceEvents, as the kernel records them
        ...
    await tracer.stop()                   # the instance is gone: nothing stays enabled

strace stops the server twice at every traced call (benchmarks/trace.py: 2-4x slower on a
busy server even with --seccomp-bpf, since every call the server makes is one of the
lecture's). Here the kernel writes each call into a ring buffer of a tracefs instance of
our own (`instances/svcviz-PID-N`) and the server never waits for svcviz. The price: the
events carry fds and results, not the bytes read nor the peer (kernel_parse.py says why).
It needs root (tracefs); the instance follows new children and threads itself
(`options/event-fork`). An instance a killed svcviz left behind is removed by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from svcviz.observe import syscalls
from svcviz.observe.procfs import list_tids, read_syscall
from svcviz.trace.events import TraceEvent
from svcviz.trace.kernel_parse import NO_ARGS, NO_RETURN, KernelTraceParser
from svcviz.trace.strace import TRACED, TraceError

MOUNT_POINT = Path("/sys/kernel/tracing")
PREFIX = "svcviz-"
BUFFER_KB = 2048  # per CPU: a second of a busy server's calls between two reads
ALIVE_CHECK = 0.5  # seconds without an event before checking the server still runs
_instances = itertools.count()


def tracefs() -> Path:
    """Where tracefs is mounted; mounted at /sys/kernel/tracing if it is not (as perf does)."""
    if os.geteuid() != 0:
        raise TraceError("kernel tracing needs root (tracefs): run as root, or trace with strace (without --kernel)")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "tracefs":
                return Path(fields[1])
    done = subprocess.run(
        ["mount", "-t", "tracefs", "nodev", str(MOUNT_POINT)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not (MOUNT_POINT / "instances").is_dir():
        said = done.stderr.strip().splitlines()[:1]
        raise TraceError(f"tracefs is not available: {said[0] if said else 'mount failed'}")
    return MOUNT_POINT


def _alive(pid: int) -> bool:
    return os.path.isdir(f"/proc/{pid}")


def remove_instance(path: Path) -> None:
    """Turn every event of the instance off, then remove it (the kernel frees its buffers)."""
    with contextlib.suppress(OSError):
        (path / "tracing_on").write_text("0")
        (path / "events" / "enable").write_text("0")
    with contextlib.suppress(OSError):
        path.rmdir()


def remove_leftovers(root: Path) -> None:
    """Instances of svcviz processes that no longer run (killed before they cleaned up)."""
    with contextlib.suppress(OSError):
        for entry in (root / "instances").iterdir():
            owner = entry.name[len(PREFIX) :].split("-")[0] if entry.name.startswith(PREFIX) else ""
            if owner.isdigit() and not _alive(int(owner)):
                remove_instance(entry)


class KernelTracer:
    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.path: Path | None = None
        self._fd: int | None = None
        self._readable = asyncio.Event()  # trace_pipe has lines, or stop() was called
        self.parser = KernelTraceParser()

    @classmethod
    def attach(cls, pids: list[int]) -> KernelTracer:
        return cls(pids)

    async def start(self) -> None:
        root = tracefs()
        remove_leftovers(root)
        tids = [tid for pid in self.pids for tid in list_tids(pid)]  # the kernel's pid filter is by thread
        if not tids:
            raise TraceError(f"no process {self.pids[0]}" if self.pids else "nothing to trace")
        path = root / "instances" / f"{PREFIX}{os.getpid()}-{next(_instances)}"
        try:
            path.mkdir()
            self.path = path
            (path / "trace_clock").write_text("mono")
            (path / "buffer_size_kb").write_text(str(BUFFER_KB))
            (path / "options" / "event-fork").write_text("1")
            (path / "set_event_pid").write_text(" ".join(map(str, tids)))
            self._seed_blocked_calls(tids)
            events = path / "events"
            for call in TRACED.split(","):
                # Only what an event is made of: exit_group's entry, clone's return, both of a read.
                sides = ("enter",) if call in NO_RETURN else ("exit",) if call in NO_ARGS else ("enter", "exit")
                for side in sides:
                    switch = events / "syscalls" / f"sys_{side}_{call}" / "enable"
                    if switch.exists():  # a call this architecture does not have (x86-64 has no plain select)
                        switch.write_text("1")
            (events / "signal" / "signal_deliver" / "enable").write_text("1")  # the last: set up
            self._fd = os.open(path / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            await self.stop()
            raise TraceError(f"cannot set up kernel tracing: {exc.strerror or exc}") from exc

    def _seed_blocked_calls(self, tids: list[int]) -> None:
        """The calls the threads are blocked in now (a server waiting in accept when the
        user starts tracing): their returns are the first events, not lost for want of an
        entry. From /proc/PID/task/TID/syscall, read before the events are on: a call that
        returns meanwhile is then followed by its successor's entry, which replaces it."""
        traced = set(TRACED.split(","))
        for tid in tids:
            with contextlib.suppress(OSError):
                call = syscalls.parse(read_syscall(tid, tid))
                if call.name in traced:
                    self.parser.blocked_in(tid, call.name, "" if call.fd is None else str(call.fd))

    async def events(self, files: bool = False) -> AsyncIterator[TraceEvent]:
        """Each call as the kernel completes it, until stop() or the root process exits.
        files: unused (the strace Tracer's signature): the kernel's events do not say what
        an fd is, so the reads of regular files cannot be left out."""
        assert self._fd is not None, "events() is read after start()"
        fd = self._fd
        loop = asyncio.get_running_loop()
        readable = self._readable
        loop.add_reader(fd, readable.set)
        parser = self.parser
        pending = b""
        try:
            while self._fd is not None:
                try:
                    await asyncio.wait_for(readable.wait(), ALIVE_CHECK)
                except asyncio.TimeoutError:
                    if not _alive(self.pids[0]):
                        break  # the server exited (strace's events end then too)
                    continue
                readable.clear()
                if self._fd is None:
                    break
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                complete, _, pending = (pending + chunk).rpartition(b"\n")
                for event in parser.feed_text(complete.decode(errors="replace")):
                    yield event
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fd)

    async def stop(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            self._readable.set()
        if self.path is not None:
            remove_instance(self.path)
            self.path = None
