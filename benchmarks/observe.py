"""How long one observer sample takes, against `ss -tanp`, on the same lab.

The lab: `svcviz serve fork --backlog 1024 --max-children 200` and 1,000 client connections
from this process that send nothing. The first 200 are accepted, each by a child blocked in
recv(); the parent then waits for a child to finish, so the other 800 complete their
handshake and wait in the accept queue. 201 server processes, 1,000 connections (200
accepted, 800 queued), 2,000 loopback sockets.

Both tools are timed interleaved over many rounds, on the same lab; medians are printed and,
last, `ratio=R` (sample / ss -tanp). A second phase adds 2,000 unrelated loopback connections
(a listener and its clients in this process) to show that the sample's cost follows the
server, not the machine: `ss -tanp` has to look at them all.

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
import time

from svcviz.observe.observer import Observer
from svcviz.servers.ready import parse_ready

CHILDREN = 200
CONNECTIONS = 1000
UNRELATED = 2000


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def start_server() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "svcviz",
            "serve",
            "fork",
            "--port",
            "0",
            "--backlog",
            "1024",
            "--cap-procs",
            "400",
            "--max-children",
            str(CHILDREN),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    ready = parse_ready(proc.stdout.readline())
    if ready is None:
        raise RuntimeError("the fork server did not start")
    return proc, ready.port


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("the lab did not settle")
        time.sleep(0.1)


def time_once(work) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def ss_tanp() -> None:
    subprocess.run(["ss", "-tanp"], stdout=subprocess.DEVNULL, check=True)


def measure(observer: Observer, rounds: int) -> tuple[float, float]:
    observer.sample()  # warm: the first sample reads every process once
    samples, ss = [], []
    for _ in range(rounds):
        samples.append(time_once(observer.sample))
        ss.append(time_once(ss_tanp))
    return statistics.median(samples), statistics.median(ss)


def unrelated_connections(count: int) -> list[socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(count)
    held = [listener]
    for _ in range(count):
        held.append(socket.create_connection(listener.getsockname()))
        held.append(listener.accept()[0])
    return held


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        cpu = "?"
    return f"{cpu}, {os.cpu_count()} cores, Linux {os.uname().release}, Python {sys.version.split()[0]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    rounds = parser.parse_args().rounds
    raise_fd_limit(CONNECTIONS + 2 * UNRELATED + 256)
    print(f"machine: {machine()}")
    proc, port = start_server()
    clients: list[socket.socket] = []
    unrelated: list[socket.socket] = []
    try:
        for _ in range(CONNECTIONS):
            clients.append(socket.create_connection(("127.0.0.1", port)))
        with Observer(pid=proc.pid) as observer:
            wait_for(lambda: len(observer.sample().processes) == CHILDREN + 1)
            snapshot = observer.sample()
            states = [c.state for c in snapshot.connections]
            print(
                f"lab: {len(snapshot.processes)} processes, {len(snapshot.connections)} connections "
                f"({states.count('accepted')} accepted, {states.count('queued')} queued), "
                f"listen queue {snapshot.queue_length}/{snapshot.listen[0].backlog}"
            )
            sample_ms, ss_ms = measure(observer, rounds)
            print(f"lab alone:        sample {sample_ms:.2f} ms   ss -tanp {ss_ms:.2f} ms   ({rounds} rounds, medians)")
            unrelated = unrelated_connections(UNRELATED)
            busy_sample_ms, busy_ss_ms = measure(observer, rounds)
            print(f"+{UNRELATED} unrelated: sample {busy_sample_ms:.2f} ms   ss -tanp {busy_ss_ms:.2f} ms")
        print(f"ratio={sample_ms / ss_ms:.2f}")
        return 0
    finally:
        for sock in clients + unrelated:
            sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
