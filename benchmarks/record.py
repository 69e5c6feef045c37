"""What recording costs: the dashboard's CPU with --record next to the same dashboard without.

The lab is the dashboard benchmark's (a fork server, 200 children holding connections,
1,000 clients), with churn: every --churn-period one held connection closes and a new one
opens, so a child exits (the server reaps it: --sigchld reap) and a queued one is forked
for: events and changed processes every sample, not a still picture. On it, at the same
time and for the same seconds, three `svcviz watch --port P` dashboards (10 samples/s):
one not recording, one recording to FILE.jsonl, one to FILE.jsonl.gz. Figures: each one's
CPU (from /proc/PID/stat), the ratio of each recorder to the plain one (target <= 1.10),
and each file's size per minute. Then replay: `svcviz replay`'s app (in-process, headless,
driven by a Pilot) steps with `right` through the gz recording; replay_step_ms is the p95
of key press to the step drawn (target <= 100 ms). --replay FILE measures only that, on FILE.

    .venv/bin/python benchmarks/record.py [--seconds 60] [--clients 1000] [--children 200]
    .venv/bin/python benchmarks/record.py --replay FILE [--steps 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from dashboard import PR_SET_CHILD_SUBREAPER, Session, cpu_seconds, reap_all, tmux, tree

HOLDER = """
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
port, count, period = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
print(len(held), flush=True)
while True:  # churn: the oldest connection goes (its child exits), a new one queues
    time.sleep(period)
    held.pop(0).close()
    held.append(socket.create_connection(("127.0.0.1", port)))
"""


def start_lab(clients: int, children: int, period: float) -> tuple[subprocess.Popen, subprocess.Popen, int]:
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "svcviz", "serve", "fork", "--port", "0", "--backlog", str(max(1024, clients))),
            *("--max-children", str(children), "--cap-procs", str(children + 56), "--max-fds", "4096"),
            *("--sigchld", "reap"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    match = re.search(r":(\d+) \(pid", server.stdout.readline())
    if not match:
        raise SystemExit("benchmarks/record.py: the fork server did not start")
    port = int(match.group(1))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(port), str(clients), str(period)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    holder.stdout.readline()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(tree(server.pid)) < children + 1:
        time.sleep(0.1)
    return server, holder, port


def samples(path: str) -> int:
    with open(path, "rb") as f:
        return f.read().count(b"\n") - 1  # the header is not a sample


STEP_BUDGET_MS = 100.0


async def _step_times(path: str, steps: int) -> list[tuple[float, float]]:
    from textual import events

    from svcviz.record.player import ReplayLab
    from svcviz.record.reader import Recording
    from svcviz.tui.replay import ReplayApp

    lab = ReplayLab(Recording(path), playing=False)
    app = ReplayApp(lab)
    times = []
    async with app.run_test(size=(120, 36)) as pilot:
        while app.index != 0:
            await pilot.pause(0.01)
        await pilot.pause()
        for target in range(1, min(steps, len(lab.samples) - 1) + 1):
            # The key as the terminal sends it, and the time until the screen is refreshed
            # with the step drawn: not Pilot.press, whose idle waits (20 ms sleeps) would be
            # measured instead of the app.
            drawn = asyncio.get_running_loop().create_future()
            start, cpu_start = time.perf_counter(), time.process_time()
            app._driver.send_message(events.Key("right", None))
            while app.index != target:
                await asyncio.sleep(0)
            app.call_after_refresh(lambda drawn=drawn: drawn.set_result((time.perf_counter(), time.process_time())))
            end, cpu_end = await drawn
            times.append((end - start, cpu_end - cpu_start))
            await pilot.pause()
    return times


def _p95_ms(values: list[float]) -> float:
    return 1000 * sorted(values)[min(len(values) - 1, int(0.95 * len(values)))]


def replay_step_ms(path: str, steps: int) -> None:
    """Wall time from key to drawn, and the CPU time of it (what a loaded machine's wall
    time hides: the other processes' turns)."""
    times = asyncio.run(_step_times(path, steps))
    wall, cpu = _p95_ms([t[0] for t in times]), _p95_ms([t[1] for t in times])
    print(f"replay_steps={len(times)} load_average_1min={os.getloadavg()[0]:.1f}")
    print(f"replay_step_ms={wall:.1f} (p95, wall)")
    print(f"replay_step_cpu_ms={cpu:.1f} (p95)")
    print(f"replay_step_budget_ratio={wall / STEP_BUDGET_MS:.3f} (target <= 1.0: within {STEP_BUDGET_MS:g} ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--children", type=int, default=200)
    parser.add_argument("--churn-period", type=float, default=0.1, help="seconds between churned connections")
    parser.add_argument("--replay", metavar="FILE", help="only the replay's step time, on this recording")
    parser.add_argument("--steps", type=int, default=300, help="replay steps measured")
    args = parser.parse_args()
    if args.replay:
        replay_step_ms(args.replay, args.steps)
        return 0
    if shutil.which("tmux") is None:
        raise SystemExit("benchmarks/record.py: needs tmux")
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    server = holder = None
    sessions: dict[str, Session] = {}
    folder = tempfile.mkdtemp(prefix="svcviz-record-bench-")
    files = {"jsonl": os.path.join(folder, "r.jsonl"), "gz": os.path.join(folder, "r.jsonl.gz")}
    try:
        server, holder, port = start_lab(args.clients, args.children, args.churn_period)
        print(f"lab: fork server on port {port}, {len(tree(server.pid)) - 1} children, {args.clients} clients")
        watch = f"{sys.executable} -m svcviz watch --port {port}"
        sessions["plain"] = Session(watch)
        sessions["jsonl"] = Session(f"{watch} --record {files['jsonl']}")
        sessions["gz"] = Session(f"{watch} --record {files['gz']}")
        for session in sessions.values():
            session.wait_for("accept queue:", timeout=30)
        time.sleep(1.0)  # all past their start-up
        before_cpu = {name: cpu_seconds(s.pid) for name, s in sessions.items()}
        before_size = {name: os.path.getsize(path) for name, path in files.items()}
        before_samples = samples(files["jsonl"])
        start = time.monotonic()
        time.sleep(args.seconds)
        wall = time.monotonic() - start
        cpu = {name: (cpu_seconds(s.pid) - before_cpu[name]) / wall for name, s in sessions.items()}
        size = {name: (os.path.getsize(path) - before_size[name]) / (wall / 60) for name, path in files.items()}
        print(f"seconds={wall:.1f}")
        # The dashboard sets the pace (a loaded machine samples less often): say how often it did.
        print(f"samples_per_second={(samples(files['jsonl']) - before_samples) / wall:.1f}")
        for name in sessions:
            print(f"cpu_{name}_percent={100 * cpu[name]:.1f}")
        for name in files:
            print(f"ratio_{name}={cpu[name] / cpu['plain']:.3f} (target <= 1.10)")
        for name in files:
            print(f"size_{name}_kib_per_minute={size[name] / 1024:.0f}")
            print(f"size_{name}_mib_per_10_minutes={10 * size[name] / 2**20:.1f}")
        for session in sessions.values():
            session.close()  # the gz recording's end-of-stream written, and the CPU theirs no more
        sessions.clear()
        replay_step_ms(files["gz"], args.steps)
        return 0
    finally:
        for session in sessions.values():
            session.close()
        tmux("kill-server")
        for proc in (holder, server):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reap_all()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
