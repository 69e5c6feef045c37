"""What tracing costs a server: `svcviz bench`'s throughput with strace on vs off, same run.

    .venv/bin/python benchmarks/trace.py [--models fork,event] [--seconds 3] [--clients 8] [--rounds 3]

For each model, round by round, three servers in turn, each measured by `svcviz bench`'s
own client loop (connect, ask one line, read the answer, close) for S seconds with no
--delay (all system calls, the worst case for a tracer):
  off      `svcviz serve MODEL`, untraced;
  seccomp     the same under `strace -f -y --seccomp-bpf` with svcviz trace's call list (the
              kernel stops the server only at the traced calls), every event parsed as the
              dashboard would (in a
              process of its own, not the clients');
  seccomp_yy  the same with -yy (each socket fd annotated with its endpoints: a sock_diag
              query per fd printed), the reason svcviz traces with -y;
  ptrace      -y without --seccomp-bpf (every system call stops the server, twice);
  kernel      `svcviz trace --kernel`'s way: the kernel's syscall tracepoints into a tracefs
              instance (root only; skipped otherwise), every event parsed likewise.
Prints first `kernel_parse_us_per_line` (the kernel mode's parser alone, on the tests'
capture), then the medians, then `MODEL_MODE_slowdown=R`: the untraced throughput over the traced
one (the goal: <= 1.5). The client loop makes nothing but traced calls (connect, write,
read, close; the server accept, read, write, close, and clone or epoll_wait), so
--seccomp-bpf, which spares only untraced calls, cannot spare anything here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
from pathlib import Path

from svcviz.bench import client_loop
from svcviz.servers.limits import die_with_parent
from svcviz.servers.ready import parse_ready
from svcviz.trace.kernel import KernelTracer
from svcviz.trace.kernel_parse import KernelTraceParser
from svcviz.trace.strace import Tracer

MODES = ("off", "kernel", "seccomp", "seccomp_yy", "ptrace")


def serve_argv(model: str, clients: int) -> list[str]:
    argv = [sys.executable, "-m", "svcviz", "serve", model, "--port", "0", "--backlog", str(max(64, clients))]
    return argv + (["--sigchld", "reap"] if model == "fork" else [])


async def tracer_process(mode: str, argv: list[str]) -> None:
    """`trace.py --tracer MODE -- ARGV`: launch ARGV under strace and parse every event, in
    a process of its own (as the dashboard is not the load generator); the count on stderr."""
    tracer: Tracer | KernelTracer
    if mode == "kernel":  # start the server, attach to it, then pass its ready line on
        # Its own child: it dies with this process, however the benchmark ends it.
        server = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, preexec_fn=die_with_parent)
        assert server.stdout is not None
        ready = await server.stdout.readline()
        tracer = KernelTracer.attach([server.pid])
        await tracer.start()
        sys.stdout.buffer.write(ready)
        sys.stdout.flush()
    else:
        tracer = Tracer.launch(argv, seccomp=mode.startswith("seccomp"), endpoints=mode == "seccomp_yy")
        await tracer.start()  # the server's stdout is ours: its ready line reaches the benchmark
    counted = 0
    try:
        async for _ in tracer.events():
            counted += 1
    finally:
        await tracer.stop()
    print(counted, file=sys.stderr)


async def measure(model: str, mode: str, clients: int, seconds: float) -> tuple[float, int]:
    """Answers per second, and how many trace events were parsed meanwhile."""
    argv = serve_argv(model, clients)
    if mode != "off":
        argv = [sys.executable, __file__, "--tracer", mode, "--", *argv]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        ready = parse_ready((await asyncio.wait_for(proc.stdout.readline(), 20)).decode(errors="replace"))
        if ready is None:
            raise SystemExit(f"{model} did not start under {mode}")
        port, pid = ready.port, ready.pid
        latencies: list[float] = []
        began = time.monotonic()
        await asyncio.gather(*(client_loop("127.0.0.1", port, began + seconds, latencies, [0]) for _ in range(clients)))
        rate = len(latencies) / (time.monotonic() - began)
        os.kill(pid, signal.SIGTERM)
        _, said = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    last = said.decode().split()[-1:] if mode != "off" else ["0"]
    return rate, int(last[0]) if last and last[0].isdigit() else 0


CAPTURE = Path(__file__).parent.parent / "tests" / "fixtures" / "tracefs_fork_thread.txt"


def kernel_parse_us_per_line(copies: int = 2000) -> float:
    """CPU microseconds a trace_pipe line costs the kernel mode's parser (the capture of
    the tests, many times over, fed in 64 KiB chunks as KernelTracer reads them); best of 3."""
    data = ("\n".join(CAPTURE.read_text().splitlines() * copies) + "\n").encode()
    lines = data.count(b"\n")
    best = float("inf")
    for _ in range(3):
        parser, pending = KernelTraceParser(monotonic_to_epoch=0.0), b""
        began = time.process_time()
        for start in range(0, len(data), 1 << 16):
            complete, _, pending = (pending + data[start : start + (1 << 16)]).rpartition(b"\n")
            parser.feed_text(complete.decode(errors="replace"))
        best = min(best, (time.process_time() - began) / lines * 1e6)
    return best


async def main(models: list[str], clients: int, seconds: float, rounds: int) -> None:
    print(f"kernel_parse_us_per_line={kernel_parse_us_per_line():.2f}")
    modes = MODES if os.geteuid() == 0 else tuple(mode for mode in MODES if mode != "kernel")
    if "kernel" not in modes:
        print("# kernel: skipped (tracefs needs root)")
    for model in models:
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        events: list[int] = []
        for number in range(rounds):
            order = modes if number % 2 == 0 else modes[::-1]  # neither always runs on a cooler machine
            for mode in order:
                rate, counted = await measure(model, mode, clients, seconds)
                rates[mode].append(rate)
                if mode == "seccomp":
                    events.append(counted)
        median = {mode: statistics.median(values) for mode, values in rates.items()}
        for mode in modes:
            print(f"{model}_{mode}_per_s={median[mode]:.0f}")
        print(f"{model}_seccomp_events_per_s={statistics.median(events) / seconds:.0f}")
        for mode in modes[1:]:
            print(f"{model}_{mode}_slowdown={median['off'] / median[mode]:.2f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--tracer"]:
        asyncio.run(tracer_process(sys.argv[2], sys.argv[4:]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="fork,event")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.models.split(","), args.clients, args.seconds, args.rounds))
