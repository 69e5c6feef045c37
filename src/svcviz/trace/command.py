"""`svcviz trace (--pid PID | --port P) [--seconds S] [--json]`: a server tree's system calls.

One event per line as it happens (`4242 accept4(3) = 5 (127.0.0.1:50140)`), or one JSON
object per line. Ends after S seconds, on SIGINT/SIGTERM, or when the tree exits; either
way strace detaches first, so the server is left untraced (TracerPid 0). With --kernel the
kernel's tracepoints record the calls instead (trace/kernel.py), and the tracefs instance
is removed on the way out.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from argparse import Namespace

from svcviz.observe.observer import ObserveError, Observer
from svcviz.procstat import descendants
from svcviz.trace.kernel import KernelTracer
from svcviz.trace.strace import TraceError, Tracer, strace_binary


def root_pid(pid: int | None, port: int | None) -> int:
    if pid is not None:
        if not os.path.isdir(f"/proc/{pid}"):
            raise TraceError(f"no process {pid}")
        return pid
    observer = Observer(port=port)  # who listens on the port (sock_diag, then fd tables)
    observer.close()
    if observer.root_pid is None:  # the listener's process may not be read: nothing to attach to
        raise TraceError(f"cannot trace port {port}: the process listening on it may not be read by this user")
    return observer.root_pid


async def trace(pids: list[int], seconds: float | None, as_json: bool, kernel: bool = False) -> int:
    tracer: Tracer | KernelTracer = KernelTracer.attach(pids) if kernel else Tracer.attach(pids)
    await tracer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def show() -> None:
        try:
            async for event in tracer.events():
                print(json.dumps(event.as_json()) if as_json else event.line(), flush=True)
        except BrokenPipeError:  # `| head`: stop tracing quietly, and keep the exit-time flush quiet too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    printer = asyncio.ensure_future(show())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({printer, stopper}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await tracer.stop()  # strace detaches; what it wrote before that is still printed
        stopper.cancel()
        try:
            await asyncio.wait_for(printer, 2.0)
        except asyncio.TimeoutError:
            printer.cancel()
    return 0


def main(args: Namespace) -> int:
    try:
        if not args.kernel:
            strace_binary()
        pids = descendants(root_pid(args.pid, args.port))
        return asyncio.run(trace(pids, args.seconds, args.json, args.kernel))
    except (TraceError, ObserveError) as exc:
        print(f"svcviz trace: {exc}", file=sys.stderr)
        return 2
