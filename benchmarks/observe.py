"""How long one observer sample takes, against `ss -tanp`, on the same labs.

The main lab: `svcviz serve fork --backlog 1024 --max-children 200` and 1,000 client
connections from this process that send nothing. The first 200 are accepted, each by a
child blocked in recv(); the parent then waits for a child to finish, so the other 800
complete their handshake and wait in the accept queue. 201 server processes, 1,000
connections (200 accepted, 800 queued), 2,000 loopback sockets.

On it, each measured alternately with `ss -tanp` (medians of CPU time, user + system, the
kernel's work for us included: the machine is shared, and wall time would measure the
neighbours):
- `ratio=R`: a warm sample (the observer has sampled before) / ss -tanp;
- `cold_ratio=R`: a new Observer's first sample (what `watch --once` pays) / ss -tanp;
- `churn_ratio=R`: a warm sample while 50 clients a second connect and quit / ss -tanp.
Then a table of warm samples on servers of several sizes, with ss -tanp beside, to show
that the sample's cost follows the server, not the machine. Before all of them (while the
machine is as the user left it): `watch_once_ratio=R`, `svcviz watch --once --json` on an
idle server / ss -tanp, with `python_start_ratio=R` beside it (`python -c pass` / ss -tanp,
alternated with both: the interpreter's own start, the floor of any command written in
Python) and `watch_once_own_ms`, what svcviz adds to that start.

    .venv/bin/python benchmarks/observe.py [--rounds N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from svcviz.observe.observer import Observer
from svcviz.servers.ready import parse_ready

CHURN_PER_SECOND = 50
# (model, processes, connections): the table's labs.
SIZES = (("event", 1, 100), ("event", 1, 10_000), ("fork", 200, 1_000), ("fork", 500, 2_000))


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


class Lab:
    """A server of the model with `connections` idle clients from this process; for fork,
    processes - 1 children each serving one, the rest queued."""

    def __init__(self, model: str, processes: int, connections: int) -> None:
        self.processes, self.connections = processes, connections
        command = [sys.executable, "-m", "svcviz", "serve", model, "--port", "0", "--backlog", "4096"]
        if model == "fork":
            command += ["--cap-procs", str(processes + 100), "--max-children", str(processes - 1)]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
        )
        self.clients: list[socket.socket] = []
        ready = parse_ready(self.proc.stdout.readline())
        if ready is None:
            self.close()
            raise RuntimeError(f"the {model} server did not start")
        self.port = ready.port
        try:
            for _ in range(connections):
                self.clients.append(socket.create_connection(("127.0.0.1", self.port)))
        except BaseException:
            self.close()
            raise

    def settled(self, observer: Observer) -> bool:
        snapshot = observer.sample()
        return len(snapshot.processes) == self.processes and len(snapshot.connections) == self.connections

    def close(self) -> None:
        for sock in self.clients:
            sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("the lab did not settle")
        time.sleep(0.1)


def cpu_ms(work: Callable[[], object]) -> float:
    """CPU time (user + system) that work costs, in ms: this thread's, and its child
    processes'. CPU time, not wall time: the machine is shared, and a wall clock measures the
    neighbours' load as much as the work."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.thread_time()
    work()
    spent = time.thread_time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent += (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return spent * 1000


def ss_tanp() -> None:
    subprocess.run(["ss", "-tanp"], stdout=subprocess.DEVNULL, check=True)


def against_ss(work: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(median CPU ms of work, median CPU ms of ss -tanp), measured alternately."""
    times, ss = [], []
    for _ in range(rounds):
        times.append(cpu_ms(work))
        ss.append(cpu_ms(ss_tanp))
    return statistics.median(times), statistics.median(ss)


def cold_sample(pid: int) -> None:
    with Observer(pid=pid) as observer:
        observer.sample()


class Churn:
    """Clients that connect and quit at a steady rate, in a thread, while it runs."""

    def __init__(self, port: int, per_second: int) -> None:
        self.port, self.interval = port, 1.0 / per_second
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        due = time.monotonic()
        while not self.stop.is_set():
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
            due += self.interval
            self.stop.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> Churn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        cpu = "?"
    return f"{cpu}, {os.cpu_count()} cores, Linux {os.uname().release}, Python {sys.version.split()[0]}"


def main_lab(rounds: int) -> None:
    lab = Lab("fork", 201, 1000)
    try:
        with Observer(pid=lab.proc.pid) as observer:
            wait_for(lambda: lab.settled(observer))
            snapshot = observer.sample()
            states = [c.state for c in snapshot.connections]
            print(
                f"lab: {len(snapshot.processes)} processes, {len(snapshot.connections)} connections "
                f"({states.count('accepted')} accepted, {states.count('queued')} queued), "
                f"listen queue {snapshot.queue_length}/{snapshot.listen[0].backlog}"
            )
            warm, ss = against_ss(observer.sample, rounds)
            print(f"warm sample {warm:.2f} ms   ss -tanp {ss:.2f} ms   (CPU, {rounds} rounds, medians)")
            cold, cold_ss = against_ss(lambda: cold_sample(lab.proc.pid), max(5, rounds // 4))
            print(f"cold sample {cold:.2f} ms   ss -tanp {cold_ss:.2f} ms")
            with Churn(lab.port, CHURN_PER_SECOND):
                time.sleep(0.5)
                churn, churn_ss = against_ss(observer.sample, rounds)
            print(f"churn sample {churn:.2f} ms   ss -tanp {churn_ss:.2f} ms   ({CHURN_PER_SECOND} clients/s)")
        print(f"ratio={warm / ss:.2f}")
        print(f"cold_ratio={cold / cold_ss:.2f}")
        print(f"churn_ratio={churn / churn_ss:.2f}")
    finally:
        lab.close()


def size_table(rounds: int) -> None:
    print("| model | processes | connections | sample (CPU ms) | ss -tanp (CPU ms) | ratio |")
    print("|---|---|---|---|---|---|")
    for model, processes, connections in SIZES:
        lab = Lab(model, processes, connections)
        try:
            with Observer(pid=lab.proc.pid) as observer:
                wait_for(lambda lab=lab, observer=observer: lab.settled(observer))
                warm, ss = against_ss(observer.sample, rounds)
        finally:
            lab.close()
        print(f"| {model} | {processes:,} | {connections:,} | {warm:.2f} | {ss:.2f} | {warm / ss:.2f} |")


def watch_once(rounds: int) -> None:
    lab = Lab("event", 1, 0)
    command = [sys.executable, "-m", "svcviz", "watch", "--once", "--json", "--port", str(lab.port)]
    bare = [sys.executable, "-c", "pass"]
    once, ss, python = [], [], []
    try:
        for _ in range(rounds):
            once.append(cpu_ms(lambda: subprocess.run(command, stdout=subprocess.DEVNULL, check=True)))
            ss.append(cpu_ms(ss_tanp))
            python.append(cpu_ms(lambda: subprocess.run(bare, check=True)))
    finally:
        lab.close()
    once_ms, ss_ms, python_ms = (statistics.median(times) for times in (once, ss, python))
    print(
        f"watch --once --json {once_ms:.2f} ms   ss -tanp {ss_ms:.2f} ms   python -c pass {python_ms:.2f} ms"
        f"   (the machine: {tcp_sockets():,} TCP sockets, {len(os.listdir('/proc')):,} /proc entries)"
    )
    print(f"watch_once_ratio={once_ms / ss_ms:.2f} (goal <= 1.5)")
    print(f"python_start_ratio={python_ms / ss_ms:.2f}")
    print(f"watch_once_own_ms={once_ms - python_ms:.1f} (beyond the interpreter's start)")


def tcp_sockets() -> int:
    """The machine's TCP sockets (ss -tanp lists them all): its cost grows with them."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(name) as table:
            count += sum(1 for _ in table) - 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    rounds = parser.parse_args().rounds
    raise_fd_limit(max(connections for _, _, connections in SIZES) + 512)
    print(f"machine: {machine()}")
    # First: the big labs' closed connections linger (TIME_WAIT) and ss -tanp lists them,
    # which made ss 4x dearer when this ran last.
    watch_once(max(5, rounds // 4))
    main_lab(rounds)
    size_table(max(5, rounds // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
