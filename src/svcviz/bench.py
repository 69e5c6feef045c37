"""`svcviz bench`: the utilization table of the lecture's server models.

For each model that serves, C clients each run the serviceblaster's loop for S seconds:
connect, ask one line, read the reply, close, again. The server does D seconds of work per
request (--delay). Per model: requests answered per second, latency (connect to reply)
p50/p99, the most processes and threads the observer saw in the server's tree, and the
server tree's CPU time from /proc. A serial server answers one request per D seconds
however many clients wait; fork, thread and event answer C at once; the pools answer N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

from svcviz import procstat
from svcviz.lab import Lab, LabError
from svcviz.observe.snapshot import Snapshot
from svcviz.servers.config import DEFAULT_BACKLOG, ServerConfig, ServerError
from svcviz.servers.registry import BY_NAME, MODELS
from svcviz.services import load_db, reply

REQUEST = b"discard\r\n"
ANSWER = ((reply(b"discard", load_db()) or "") + "\n").encode()  # reply is None only for a blank line
SAMPLE_EVERY = 0.1  # seconds between observer samples during a run
RETRY_PAUSE = 0.01  # after a failed request, so a refusing server is not hammered
MAX_BACKLOG = 65535
FDS_KEPT = 64  # this process's own fds besides the clients' sockets (observer, pipes, ...)


@dataclass(frozen=True)
class Row:
    model: str
    served: int = 0  # requests answered correctly
    failed: int = 0  # refused, reset, wrong answer
    seconds: float = 0.0
    throughput: float = 0.0  # answered per second
    p50_ms: float | None = None
    p99_ms: float | None = None
    processes: int = 0  # the most the observer saw in the server's tree
    threads: int = 0
    cpu_percent: float = 0.0  # the server tree's CPU time over the run, % of one core
    note: str = ""  # why a model was not measured


def config_for(model: str, clients: int, delay: float) -> ServerConfig:
    # A backlog that holds every client, so the table measures serving, not SYN drops
    # (a dropped SYN costs a 1 s retransmit); fork reaps its children, or zombies would
    # fill its process cap within seconds.
    return ServerConfig(
        model=model,
        port=0,
        delay=delay,
        backlog=max(DEFAULT_BACKLOG, clients),
        sigchld="reap" if BY_NAME[model].forks else "default",
    )


async def one_request(host: str, port: int) -> bool:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(REQUEST)
        return await reader.readline() == ANSWER
    finally:
        writer.close()


async def client_loop(host: str, port: int, until: float, latencies: list[float], failures: list[int]) -> None:
    """The serviceblaster's loop, for one client, until the deadline; a request still in
    flight then is abandoned, not counted."""
    while (left := until - time.monotonic()) > 0:
        began = time.monotonic()
        try:
            good = await asyncio.wait_for(one_request(host, port), left)
        except asyncio.TimeoutError:
            return
        except OSError:
            good = False
        if good:
            latencies.append(time.monotonic() - began)
        else:
            failures[0] += 1
            await asyncio.sleep(RETRY_PAUSE)


def tree_cpu_ticks(snapshot: Snapshot, root: int) -> int:
    """CPU ticks of the server tree: each process's own (utime+stime), plus the root's
    cutime+cstime, which holds every child it has already reaped."""
    total = 0
    for process in snapshot.processes:
        stat = procstat.read_stat(process.pid)
        if stat is None:
            continue
        total += stat.utime + stat.stime
        if process.pid == root:
            total += stat.cutime + stat.cstime
    return total


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(model: str, clients: int, delay: float, seconds: float) -> Row:
    lab = Lab(config_for(model, clients, delay))
    await lab.start()
    try:
        lab.pause()  # only the bench's own samples: the lab's 10/s would be noise in the CPU
        host, port = lab.config.host, lab.config.port
        root = lab.server_pid
        assert root is not None  # lab.start() started it (or raised)
        first = await lab.sample()
        cpu_before = tree_cpu_ticks(first.snapshot, root)
        latencies: list[float] = []
        failures = [0]
        began = time.monotonic()
        until = began + seconds
        loops = [asyncio.create_task(client_loop(host, port, until, latencies, failures)) for _ in range(clients)]
        most_processes, most_threads = len(first.snapshot.processes), first.snapshot.thread_total
        last = first
        while time.monotonic() < until:
            await asyncio.sleep(min(SAMPLE_EVERY, max(0.0, until - time.monotonic())))
            last = await lab.sample()
            most_processes = max(most_processes, len(last.snapshot.processes))
            most_threads = max(most_threads, last.snapshot.thread_total)
        cpu_after = tree_cpu_ticks(last.snapshot, root)
        await asyncio.gather(*loops)
        elapsed = time.monotonic() - began
    finally:
        await lab.stop()
    return Row(
        model,
        len(latencies),
        failures[0],
        round(elapsed, 2),
        round(len(latencies) / elapsed, 1),
        _ms(percentile(latencies, 0.50)),
        _ms(percentile(latencies, 0.99)),
        most_processes,
        most_threads,
        round(100 * (cpu_after - cpu_before) / procstat.TICKS / elapsed, 1),
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def bench(clients: int, delay: float, seconds: float, on_row: Callable[[Row], None] | None = None) -> list[Row]:
    rows: list[Row] = []
    for model in MODELS:
        if model.serves:
            row = await measure(model.name, clients, delay, seconds)
        else:
            row = Row(model.name, note=f"not measured: {model.idea}")
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def table(rows: list[Row], clients: int, delay: float, seconds: float) -> Table:
    unmeasured = [row.model for row in rows if row.note]
    caption = "CPU: the server tree's, in % of one core."
    if unmeasured:
        caption += f" Not measured (no concurrent service): {', '.join(unmeasured)}."
    grid = Table(
        title=f"{clients} clients, each looping connect/ask/read/close; {delay:g} s of work a request; "
        f"{seconds:g} s a model",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    grid.add_column("model", no_wrap=True)
    for heading in ("req/s", "p50 ms", "p99 ms", "failed", "procs", "threads", "CPU"):
        grid.add_column(heading, justify="right", no_wrap=True)
    for row in rows:
        if not row.note:
            grid.add_row(
                row.model,
                f"{row.throughput:.1f}",
                _text(row.p50_ms),
                _text(row.p99_ms),
                str(row.failed),
                str(row.processes),
                str(row.threads),
                f"{row.cpu_percent:.0f}%",
            )
    return grid


def _text(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def most_clients() -> int:
    """Every client is a socket of this process, and each model's backlog holds them all."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1, min(MAX_BACKLOG, soft - FDS_KEPT))


def check_options(clients: int, delay: float, seconds: float) -> str | None:
    """The first of bench's own options that cannot work, named, before any model runs
    (not a server's option derived from it, like the backlog, three models later)."""
    limit = most_clients()
    if not 1 <= clients <= limit:
        why = (
            f"each client is a socket, and this process may open {limit + FDS_KEPT} files (ulimit -n)"
            if limit < MAX_BACKLOG
            else "each model's backlog must hold every client"
        )
        return f"--clients {clients}: must be 1..{limit}: {why}"
    if seconds <= 0:
        return "--seconds must be more than 0"
    for model in MODELS:
        if not model.serves:
            continue
        try:
            config_for(model.name, clients, delay).check()
        except ServerError as exc:
            return str(exc)
    return None


def main(args: argparse.Namespace) -> int:
    problem = check_options(args.clients, args.delay, args.seconds)
    if problem:
        print(f"svcviz bench: {problem}", file=sys.stderr)
        return 2
    console = Console(highlight=False, stderr=True)
    progress = None if args.json else (lambda row: console.print(f"[dim]{row.model} done[/]"))
    try:
        rows = asyncio.run(bench(args.clients, args.delay, args.seconds, progress))
    except LabError as exc:
        print(f"svcviz bench: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "clients": args.clients,
                    "delay": args.delay,
                    "seconds": args.seconds,
                    "models": [asdict(row) for row in rows],
                },
                indent=2,
            )
        )
    else:
        Console(highlight=False).print(table(rows, args.clients, args.delay, args.seconds))
    return 0
