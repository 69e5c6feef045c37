"""`svcviz blast 1000` against a minimal C connect loop, interleaved, on one event server.

    .venv/bin/python benchmarks/blast.py [--rounds 7] [--count 1000]

Starts `svcviz serve event --backlog 4096 --port 0`, builds benchmarks/connect_loop.c with
gcc into a temporary directory, then alternates the two clients round by round (which goes
first alternates too, so neither always meets a server still busy with the other's
closes). Both measure the same thing: the time to connect all N, not process start.
Prints the medians and, last, `ratio=R`: blast's connect rate over C's (the goal: >= 0.5).
The server is stopped however the benchmark ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from svcviz.servers.ready import parse_ready

HERE = Path(__file__).resolve().parent
SETTLE = 0.3  # seconds between runs: the server accepts and closes the last run's connections


def start_server() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "svcviz", "serve", "event", "--backlog", "4096", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ready = parse_ready(proc.stdout.readline())
    if ready is None:
        stop(proc)
        raise SystemExit("the event server did not start")
    return proc, ready.port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def build_c(directory: str) -> str:
    binary = str(Path(directory) / "connect_loop")
    subprocess.run(["gcc", "-O2", "-o", binary, str(HERE / "connect_loop.c")], check=True)
    return binary


def run_blast(port: int, count: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "svcviz", "blast", str(count), "--port", str(port), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    if result["connected"] != count:
        raise SystemExit(f"blast connected only {result['connected']} of {count}: {out.stdout}")
    return result["seconds"]


def run_c(binary: str, port: int, count: int) -> float:
    out = subprocess.run([binary, str(port), str(count)], capture_output=True, text=True, timeout=120)
    fields = dict(item.split("=") for item in out.stdout.split())
    if int(fields["connected"]) != count:
        raise SystemExit(f"the C loop connected only {fields['connected']} of {count}")
    return float(fields["seconds"])


async def fleet_figures(port: int, count: int) -> str:
    """The fleet the dashboard uses: time to connect count interactive clients and to close
    them all, and the longest the event loop went without a turn meanwhile."""
    from svcviz.clients import Fleet

    stalls = [0.0]

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stalls[0] = max(stalls[0], now - last)
            last = now

    fleet = Fleet("127.0.0.1", port, cap=count)
    tick = asyncio.create_task(ticker())
    began = time.perf_counter()
    await fleet.add("interactive", count=count)
    while sum(c.state == "idle" for c in fleet.clients()) < count:
        await asyncio.sleep(0.001)
    connected = time.perf_counter() - began
    began = time.perf_counter()
    await fleet.aclose()
    closed = time.perf_counter() - began
    tick.cancel()
    return (
        f"fleet: {count} interactive clients connected in {connected * 1000:.0f} ms, "
        f"closed in {closed * 1000:.0f} ms; longest loop stall {stalls[0] * 1000:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below runs
    proc, port = start_server()
    try:
        with tempfile.TemporaryDirectory() as directory:
            binary = build_c(directory)
            blast_times, c_times = [], []
            for round_ in range(args.rounds):
                runs = [("blast", lambda: run_blast(port, args.count)), ("c", lambda: run_c(binary, port, args.count))]
                for name, run in runs if round_ % 2 == 0 else reversed(runs):
                    seconds = run()
                    (blast_times if name == "blast" else c_times).append(seconds)
                    time.sleep(SETTLE)
                print(
                    f"round {round_ + 1}: blast {args.count / blast_times[-1]:8.0f}/s "
                    f"({blast_times[-1] * 1000:.1f} ms)  C {args.count / c_times[-1]:8.0f}/s "
                    f"({c_times[-1] * 1000:.1f} ms)",
                    flush=True,
                )
            print(asyncio.run(fleet_figures(port, args.count)), flush=True)
    finally:
        stop(proc)
    blast_median, c_median = statistics.median(blast_times), statistics.median(c_times)
    print(f"median: blast {args.count / blast_median:.0f} connections/s, C {args.count / c_median:.0f} connections/s")
    print(f"ratio={c_median / blast_median:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
