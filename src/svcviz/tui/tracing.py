"""`t`: the server tree's system calls, handed to the dashboard in batches.

On the lab's own models, strace: it attaches to the server and every process below it (-p
each, -f for what they start later), and shows the bytes read and written and each
client's address, at the price of stopping the server at every call. On a watched server
(nginx, a student's C program: something that may be serving for real), the kernel's own
tracepoints when svcviz is root (trace/kernel.py): the server is never stopped, and the
events say the calls, fds and results without the bytes. Events arrive as fast as the
server makes calls; the dashboard takes them ten times a second as one batch (the newest
KEEP of them), so a busy server cannot flood the app with repaints. Stopping detaches
strace (the kernel's TracerPid of each is 0 again), or removes the tracefs instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from svcviz.observe.snapshot import Event
from svcviz.procstat import descendants
from svcviz.trace.events import TraceEvent
from svcviz.trace.kernel import KernelTracer
from svcviz.trace.strace import TraceError, Tracer, strace_binary

KEEP = 500  # per batch: more than a log shows


def as_event(call: TraceEvent) -> Event:
    return Event(call.time, "syscall", call.line(), call.pid)


class SyscallTrace:
    """One tracing of one server tree: start() (TraceError says why it cannot), batches
    via take(), stop(). ended() is called once if tracing ends by itself (the tree exited).
    kernel: the kernel's tracepoints rather than strace."""

    def __init__(self, root: int, ended: Callable[[str], object], kernel: bool = False) -> None:
        self.root = root
        self.kernel = kernel
        self._ended = ended
        self._tracer: Tracer | KernelTracer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: list[TraceEvent] = []
        self._stopping = False
        self.kernel_refused = ""  # why the kernel's tracepoints could not be used, when strace stood in

    async def start(self) -> None:
        if self.kernel:
            kernel = KernelTracer.attach(descendants(self.root))
            try:
                await kernel.start()
                self._tracer = kernel
            except TraceError as exc:  # no tracefs here (a container): strace, saying why
                self.kernel, self.kernel_refused = False, str(exc)
        if self._tracer is None:
            strace_binary()  # the install hint, before anything is started
            self._tracer = Tracer.attach(descendants(self.root))
            await self._tracer.start()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._tracer is not None  # start() made it
        try:
            async for call in self._tracer.events():
                self._waiting.append(call)
                if len(self._waiting) > 2 * KEEP:
                    del self._waiting[:-KEEP]
        finally:
            if not self._stopping:
                self._ended(f"tracing ended: pid {self.root} and its children exited (t traces the new server)")

    def take(self) -> list[TraceEvent]:
        """The calls since the last take, oldest first (at most KEEP)."""
        taken, self._waiting = self._waiting[-KEEP:], []
        return taken

    async def stop(self) -> None:
        self._stopping = True
        if self._tracer is not None:
            await self._tracer.stop()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 2.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()


__all__ = ["KEEP", "SyscallTrace", "TraceError", "as_event"]  # TraceError: what start() raises
