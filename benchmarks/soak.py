"""Soak the lab: client churn across the models; does svcviz leak memory or fds?

Runs a Lab in this process for --minutes (default 10), as the dashboard would: the sampler
at 10/s consumed through lab.updates(), 50 new clients a second that each ask once and quit,
the model switched every --switch seconds through the models that serve. Baseline memory
and fd count are taken after a warm-up minute (imports, caches and the first model's
sockets settle); at the end the clients are closed and the figures compared.

Prints RSS and fd count at each switch, then the growth, and exits 1 when memory grew by
more than 10 MB or the fd count did not return to its baseline.

    .venv/bin/python benchmarks/soak.py              # the full ten minutes
    .venv/bin/python benchmarks/soak.py --minutes 1  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import psutil

from svcviz.lab import Lab
from svcviz.servers.config import ServerConfig

SERVING = ["fork", "thread", "prefork", "threadpool", "event", "serial"]
MEMORY_BUDGET = 10 * 2**20


def own_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def own_rss() -> int:
    return psutil.Process().memory_info().rss


async def consume(lab: Lab, counter: list[int]) -> None:
    async for _update in lab.updates():
        counter[0] += 1


async def churn(lab: Lab, rate: int, stop_at: float) -> int:
    """rate new clients a second until stop_at; how many were made."""
    made = 0
    while time.monotonic() < stop_at:
        started = time.monotonic()
        made += len(await lab.add_clients(rate, kind="scripted", queries=1))
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return made


async def settle(lab: Lab) -> None:
    """Close every client and let the sampler see the quiet server."""
    await lab.close_all_clients()
    for _ in range(10):
        await lab.sample()
        await asyncio.sleep(0.1)


async def soak(minutes: float, rate: int, switch: float, warmup: float) -> int:
    lab = Lab(ServerConfig(model=SERVING[0], port=0, backlog=128, cap_procs=400, sigchld="reap"))
    await lab.start()
    updates = [0]
    consumer = asyncio.create_task(consume(lab, updates))
    made = 0
    try:
        made += await churn(lab, rate, time.monotonic() + warmup)
        await settle(lab)
        base_rss, base_fds = own_rss(), own_fds()
        print(f"baseline after {warmup:.0f} s warm-up: rss {base_rss / 2**20:.1f} MB, fds {base_fds}")
        end = time.monotonic() + minutes * 60
        turn = 0
        while time.monotonic() < end:
            turn += 1
            model = SERVING[turn % len(SERVING)]
            await lab.switch_model(model)
            made += await churn(lab, rate, min(end, time.monotonic() + switch))
            print(
                f"{model:<10} clients so far {made:>6}  rss {own_rss() / 2**20:6.1f} MB  "
                f"fds {own_fds():>4}  updates {updates[0]}",
                flush=True,
            )
        await settle(lab)
        rss, fds = own_rss(), own_fds()
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await lab.stop()
    grown = rss - base_rss
    print(f"clients {made}, updates {updates[0]}")
    print(f"memory: {base_rss / 2**20:.1f} -> {rss / 2**20:.1f} MB (grew {grown / 2**20:+.1f} MB, budget 10 MB)")
    print(f"fds: {base_fds} -> {fds} (baseline {'kept' if fds <= base_fds else 'NOT kept'})")
    ok = grown <= MEMORY_BUDGET and fds <= base_fds
    print("soak: ok" if ok else "soak: FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=50, help="new clients per second")
    parser.add_argument("--switch", type=float, default=60.0, help="seconds per model")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    args = parser.parse_args()
    try:
        return asyncio.run(soak(args.minutes, args.rate, args.switch, args.warmup))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
