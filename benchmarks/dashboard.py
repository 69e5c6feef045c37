"""The dashboard's cost next to htop's, on the observer benchmark's lab.

The lab: a fork server with 200 children holding client connections, 1,000 clients in
all (200 being served, 800 waiting in the accept queue: --max-children 200). On it, in
the same run and the same 20 s: `svcviz watch --port P` (the dashboard sampling at 10/s)
in one tmux session and `htop -d 1 -t` (tree mode, 10 refreshes/s) in another. Figures:
CPU of each from /proc/PID/stat, first frame time (the dashboard drawn, its header saying
"starting the lab" or the server: the median of --starts starts of `svcviz watch`, each
beside a start of a bare Textual app, a Static and nothing else, started the same way:
`textual_frame_ms`, the floor any Textual app pays here), first sample time (the first
sample drawn: "accept queue:", in the session then measured), key
press to screen latency (p95, polling tmux capture-pane; and the part of it inside svcviz,
from the key event to the frame written, by benchmarks/timed_app.py), and ratio = svcviz
CPU / htop CPU. Then the same on two big servers: an event server with 10,000 connections
(`event10k_` lines) and a thread server with 200 threads, each serving a client (`threads200_`).

Goals (issue 16): ratio <= 1.0, first_frame_ms <= 500, key_p95_ms <= 50 on the main lab;
ratio <= 1.5 and key p95 <= 100 ms on the big two.

    .venv/bin/python benchmarks/dashboard.py [--seconds 20] [--labs main,event10k,threads200]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from svcviz.procstat import TICKS, all_stats, read_stat
from svcviz.servers.ready import parse_ready

PR_SET_CHILD_SUBREAPER = 36
HOLDER = """
import resource, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (count + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
for _ in range(count):
    held.append(socket.create_connection(("127.0.0.1", port)))
print(len(held), flush=True)
time.sleep(3600)
"""


SOCKET = f"svcviz-bench-{os.getpid()}"  # a private tmux server: never the default socket


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, timeout=10).stdout


def cpu_seconds(pid: int) -> float:
    stat = read_stat(pid)
    return (stat.utime + stat.stime) / TICKS  # all threads


def ensure_htop() -> str:
    path = shutil.which("htop")
    if path:
        return path
    print("htop is missing: installing it with `apt-get install -y htop`", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "htop"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("htop") or sys.exit("benchmarks/dashboard.py: htop did not install")


class Session:
    """A detached tmux session running one command; the pane's pid is the command's."""

    def __init__(self, command: str, width: int = 160, height: int = 50) -> None:
        self.name = f"svcviz-bench-{uuid.uuid4().hex[:8]}"
        self.started = time.monotonic()
        tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command)
        self.pid = int(tmux("list-panes", "-t", self.name, "-F", "#{pane_pid}").strip())

    def screen(self) -> str:
        return tmux("capture-pane", "-p", "-t", self.name)

    def wait_for(self, text: str, timeout: float = 15.0) -> float:
        """Seconds from now until text is on screen."""
        start = time.monotonic()
        while text not in self.screen():
            if time.monotonic() - start > timeout:
                raise SystemExit(f"benchmarks/dashboard.py: {text!r} never appeared:\n{self.screen()}")
            time.sleep(0.002)
        return time.monotonic() - start

    def wait_since_start(self, text: str, timeout: float = 60.0) -> float:
        """Seconds from the session's start until text is on screen."""
        start = self.started
        while text not in self.screen():
            if time.monotonic() - start > timeout:
                raise SystemExit(f"benchmarks/dashboard.py: {text!r} never appeared:\n{self.screen()}")
            time.sleep(0.002)
        return time.monotonic() - start

    def press(self, key: str) -> None:
        tmux("send-keys", "-t", self.name, key)

    def close(self) -> None:
        tmux("kill-session", "-t", self.name)


# The labs: (name, `svcviz serve` arguments, clients, goals). The main one is the observer
# benchmark's; the other two are the big servers: one process with 10,000
# connections, and one process with 200 threads (each serving one client).
LABS = {
    "main": (
        ["fork", "--backlog", "{backlog}", "--max-children", "200", "--cap-procs", "256", "--max-fds", "4096"],
        1000,
    ),
    "event10k": (["event", "--backlog", "{backlog}", "--max-fds", "12000"], 10_000),
    "threads200": (["thread", "--backlog", "{backlog}", "--cap-threads", "256", "--max-fds", "4096"], 200),
}
# The reference for the first frame: the smallest Textual app, started the same way.
BARE_TEXTUAL = (
    "from textual.app import App; from textual.widgets import Static\n"
    "class Bare(App):\n"
    "    def compose(self):\n"
    "        yield Static('bare textual app')\n"
    "Bare().run()\n"
)
GOALS = {"main": (1.0, 50), "event10k": (1.5, 100), "threads200": (1.5, 100)}  # (ratio, key p95 ms)


def start_lab(name: str, clients: int) -> tuple[subprocess.Popen, subprocess.Popen, int]:
    """The lab's server and a holder process with `clients` idle connections to it, settled:
    every connection is seen by the observer, and the server's processes or threads are up."""
    from svcviz.observe.observer import Observer

    arguments, _ = LABS[name]
    arguments = [a.replace("{backlog}", str(max(1024, clients))) for a in arguments]
    server = subprocess.Popen(
        [sys.executable, "-m", "svcviz", "serve", *arguments[:1], "--port", "0", *arguments[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    ready = parse_ready(server.stdout.readline())
    if ready is None:
        raise SystemExit(f"benchmarks/dashboard.py: the {arguments[0]} server did not start")
    port = ready.port
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(port), str(clients)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    holder.stdout.readline()
    expected = {"main": lambda s: len(s.processes) >= 201, "threads200": lambda s: s.thread_total >= clients + 1}
    settled = expected.get(name, lambda s: True)
    deadline = time.monotonic() + 60
    with Observer(pid=server.pid) as observer:
        while time.monotonic() < deadline:
            snapshot = observer.sample()
            if len(snapshot.connections) >= clients and settled(snapshot):
                break
            time.sleep(0.2)
    return server, holder, port


def tree(root: int) -> list[int]:
    """The pids in root's process group (the server and the children it forked)."""
    return [stat.pid for stat in all_stats() if stat.pgrp == root]


def observer_cost(port: int, rounds: int = 20) -> float:
    """CPU seconds of one observer sample of the lab: the floor under the dashboard's cost."""
    from svcviz.observe.observer import Observer

    observer = Observer(port=port)
    observer.sample()
    started = time.process_time()
    for _ in range(rounds):
        observer.sample()
    return (time.process_time() - started) / rounds


def reap_all(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def first_frames(port: int, starts: int) -> tuple[list[float], list[float], Session]:
    """Seconds to the first frame of a bare Textual app and of `svcviz watch --port P` (its
    header), started alternately, starts times each: one start is at the mercy of the
    neighbours. The last session is left open (the tmux server ends with its last one)."""
    bare_frames: list[float] = []
    frames: list[float] = []
    previous: Session | None = None
    for _ in range(starts):
        for command, text, into in (
            (f"{sys.executable} -c {shlex.quote(BARE_TEXTUAL)}", "bare textual app", bare_frames),
            (f"{sys.executable} -m svcviz watch --port {port}", " svcviz ", frames),
        ):
            session = Session(command)
            into.append(session.wait_since_start(text))
            if previous is not None:
                previous.close()
            previous = session
    assert previous is not None
    return bare_frames, frames, previous


def measure(name: str, htop: str, args: argparse.Namespace) -> None:
    """One lab: the dashboard and htop side by side on it; prints its name=value lines."""
    _, clients = LABS[name]
    prefix = "" if name == "main" else f"{name}_"
    server = holder = None
    sessions: list[Session] = []
    try:
        server, holder, port = start_lab(name, clients)
        load = os.getloadavg()[0]
        print(f"lab {name}: server pid {server.pid} on port {port}, {clients} clients, load average {load:.1f}")
        bare_frames, frames, last = first_frames(port, args.starts)
        try:
            times = f"/tmp/svcviz-bench-keys-{os.getpid()}-{name}.jsonl"
            timed = Path(__file__).with_name("timed_app.py")
            app = Session(f"SVCVIZ_KEY_TIMES={times} {sys.executable} {timed} watch --port {port}")
        finally:
            last.close()  # after the next session is up: closing the last one would end the tmux server
        sessions.append(app)
        first_sample = app.wait_since_start("accept queue:")
        first_frame, bare_frame = statistics.median(frames), statistics.median(bare_frames)
        top = Session(f"{htop} -d 1 -t")
        sessions.append(top)
        top.wait_for("PID")
        time.sleep(1.0)  # both past their start-up
        before = {s.name: cpu_seconds(s.pid) for s in sessions}
        start = time.monotonic()
        time.sleep(args.seconds)
        wall = time.monotonic() - start
        used = {s.name: cpu_seconds(s.pid) - before[s.name] for s in sessions}
        app_cpu, htop_cpu = used[app.name] / wall, used[top.name] / wall
        latencies = []
        for _ in range(args.presses):
            app.press("p")
            latencies.append(app.wait_for(" paused "))
            app.press("p")
            latencies.append(app.wait_for(" live "))
        in_app = [json.loads(line) for line in Path(times).read_text().splitlines()]
        os.unlink(times)
        print(f"  svcviz (watch, 10 samples/s): {100 * app_cpu:.1f}% of a core over {wall:.1f} s")
        print(f"  htop -d 1 -t: {100 * htop_cpu:.1f}% of a core over {wall:.1f} s")
        sample_cpu = observer_cost(port)
        print(
            f"  the observer alone (same lab, in-process): {sample_cpu * 1000:.1f} ms CPU per sample, "
            f"{100 * sample_cpu * 10:.1f}% of a core at 10 samples/s"
        )
        ratio_goal, key_goal = GOALS[name]
        ratio = app_cpu / htop_cpu if htop_cpu else float("inf")
        print(f"{prefix}ratio={ratio:.2f} (goal <= {ratio_goal})")
        goal = " (goal <= 500)" if name == "main" else ""
        print(f"{prefix}first_frame_ms={first_frame * 1000:.0f}{goal}")
        print(f"{prefix}first_sample_ms={first_sample * 1000:.0f}")
        print(f"{prefix}textual_frame_ms={bare_frame * 1000:.0f} (a bare Textual app, started alternately with it)")
        print(f"{prefix}first_frame_vs_textual={first_frame / bare_frame:.2f}")
        print(
            f"{prefix}key_p95_ms={p95(latencies) * 1000:.0f} (goal <= {key_goal}; "
            f"p50 {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms over {len(latencies)} presses)",
            flush=True,
        )
        walls, cpus = [t["wall_ms"] for t in in_app], [t["cpu_ms"] for t in in_app]
        print(
            f"{prefix}key_in_app_p95_ms={p95(walls):.0f} (of it, the key event to the frame written, in svcviz; "
            f"p50 {sorted(walls)[len(walls) // 2]:.0f} ms; CPU p95 {p95(cpus):.0f} ms)",
            flush=True,
        )
    finally:
        for session in sessions:
            session.close()
        for proc in (holder, server):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reap_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--starts", type=int, default=5, help="first frames measured, each against a bare Textual app")
    parser.add_argument("--labs", default=",".join(LABS), help=f"which labs, comma-separated (of {', '.join(LABS)})")
    args = parser.parse_args()
    labs = args.labs.split(",")
    unknown = [name for name in labs if name not in LABS]
    if unknown:
        parser.error(f"--labs: unknown lab {unknown[0]!r} (known: {', '.join(LABS)})")
    if shutil.which("tmux") is None:
        raise SystemExit("benchmarks/dashboard.py: needs tmux")
    htop = ensure_htop()
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    # The server's children are orphaned when it is killed: adopt them here and reap them.
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # SIGTERM/SIGHUP end the run through the finally below, like Ctrl+C does.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    try:
        for name in labs:
            measure(name, htop, args)
        return 0
    finally:
        tmux("kill-server")


if __name__ == "__main__":
    sys.exit(main())
