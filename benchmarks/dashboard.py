"""The dashboard's cost next to htop's, on the observer benchmark's lab.

The lab: a fork server with 200 children holding client connections, 1,000 clients in
all (200 being served, 800 waiting in the accept queue: --max-children 200). On it, in
the same run and the same 20 s: `svcviz watch --port P` (the dashboard sampling at 10/s)
in one tmux session and `htop -d 1 -t` (tree mode, 10 refreshes/s) in another. Figures:
CPU of each from /proc/PID/stat, first frame time, key press to screen latency (p95,
polling tmux capture-pane), and ratio = svcviz CPU / htop CPU (target: at most 2).

    .venv/bin/python benchmarks/dashboard.py [--seconds 20] [--clients 1000] [--children 200]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid

from svcviz.procstat import TICKS, all_stats, read_stat
from svcviz.servers.ready import parse_ready

PR_SET_CHILD_SUBREAPER = 36
HOLDER = """
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
port, count = int(sys.argv[1]), int(sys.argv[2])
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

    def press(self, key: str) -> None:
        tmux("send-keys", "-t", self.name, key)

    def close(self) -> None:
        tmux("kill-session", "-t", self.name)


def start_lab(clients: int, children: int) -> tuple[subprocess.Popen, subprocess.Popen, int]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "svcviz",
            "serve",
            "fork",
            "--port",
            "0",
            "--backlog",
            str(max(1024, clients)),
            "--max-children",
            str(children),
            "--cap-procs",
            str(children + 56),
            "--max-fds",
            "4096",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    ready = parse_ready(server.stdout.readline())
    if ready is None:
        raise SystemExit("benchmarks/dashboard.py: the fork server did not start")
    port = ready.port
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(port), str(clients)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    holder.stdout.readline()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(tree(server.pid)) < children + 1:
        time.sleep(0.1)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--children", type=int, default=200)
    parser.add_argument("--presses", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("benchmarks/dashboard.py: needs tmux")
    htop = ensure_htop()
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    # The server's children are orphaned when it is killed: adopt them here and reap them.
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # SIGTERM/SIGHUP end the run through the finally below, like Ctrl+C does.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    server = holder = None
    sessions: list[Session] = []
    try:
        server, holder, port = start_lab(args.clients, args.children)
        print(
            f"lab: fork server pid {server.pid} on port {port}, {len(tree(server.pid)) - 1} children, "
            f"{args.clients} clients",
            flush=True,
        )
        app = Session(f"{sys.executable} -m svcviz watch --port {port}")
        sessions.append(app)
        first_frame = app.wait_for("accept queue:")
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
        print(f"svcviz (watch, 10 samples/s): {100 * app_cpu:.1f}% of a core over {wall:.1f} s")
        print(f"htop -d 1 -t: {100 * htop_cpu:.1f}% of a core over {wall:.1f} s")
        print(f"first frame: {first_frame * 1000:.0f} ms (target < 1000)")
        print(
            f"key press to screen: p50 {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms, "
            f"p95 {p95(latencies) * 1000:.0f} ms over {len(latencies)} presses (target < 100)"
        )
        sample_cpu = observer_cost(port)
        print(
            f"of which the observer alone (same lab, in-process): {sample_cpu * 1000:.1f} ms CPU per sample, "
            f"{100 * sample_cpu * 10:.1f}% of a core at 10 samples/s"
        )
        ratio = app_cpu / htop_cpu if htop_cpu else float("inf")
        print(f"ratio={ratio:.2f} (target <= 2)")
        return 0
    finally:
        for session in sessions:
            session.close()
        tmux("kill-server")
        for proc in (holder, server):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reap_all()


if __name__ == "__main__":
    sys.exit(main())
