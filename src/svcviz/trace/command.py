"""`svcviz trace (--pid PID | --port P) [--seconds S] [--json]`: a server tree's system calls.

One event per line as it happens (`4242 accept4(3) = 5 (127.0.0.1:50140)`), or one JSON
object per line. Ends after S seconds, on SIGINT/SIGTERM, or when the tree exits; either
way strace detaches first, so the server is left untraced (TracerPid 0).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from svcviz.observe.observer import ObserveError, Observer
from svcviz.trace.strace import TraceError, Tracer, strace_binary


def tree_pids(pid: int | None, port: int | None) -> list[int]:
    """The root first, then every process of its tree (strace -f takes each one's threads)."""
    observer = Observer(pid=pid, port=port)
    try:
        snapshot = observer.sample()
    finally:
        observer.close()
    others = [p.pid for p in snapshot.processes if p.pid != observer.root_pid]
    return [observer.root_pid, *others]


async def trace(pids: list[int], seconds: float | None, as_json: bool) -> int:
    tracer = Tracer.attach(pids)
    await tracer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def show() -> None:
        async for event in tracer.events():
            print(json.dumps(event.as_json()) if as_json else event.line(), flush=True)

    printer = asyncio.ensure_future(show())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({printer, stopper}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await tracer.stop()  # strace detaches; what it wrote before that is still printed
        stopper.cancel()
        try:
            await asyncio.wait_for(printer, 2.0)
        except (asyncio.TimeoutError, BrokenPipeError):
            printer.cancel()
    return 0


def main(args) -> int:
    try:
        strace_binary()
        pids = tree_pids(args.pid, args.port)
        return asyncio.run(trace(pids, args.seconds, args.json))
    except (TraceError, ObserveError) as exc:
        print(f"svcviz trace: {exc}", file=sys.stderr)
        return 2
