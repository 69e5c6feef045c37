"""What a sample costs on a threaded server, where every thread's wait is read each sample.

The lab: `svcviz serve thread` with 200 client connections that send nothing: 201 threads,
200 blocked in recv() on their own connection, the main one in accept(). The reference is
`ps -L -o tid,stat,wchan -p PID`, which reads each thread's stat and what it waits in
(wchan) the way a person would ask; both are timed interleaved over many rounds on the same
lab, medians printed, and last `ratio=R` (sample / ps). Run it on two checkouts to compare
(PYTHONPATH=OTHER/src picks the other one's svcviz).

    .venv/bin/python benchmarks/threads.py [--rounds N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

from svcviz.observe.observer import Observer
from svcviz.servers.ready import parse_ready

CONNECTIONS = 200


def start_server() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "svcviz", "serve", "thread", "--port", "0", "--backlog", "256", "--cap-threads", "400"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    ready = parse_ready(proc.stdout.readline())
    if ready is None:
        raise RuntimeError("the thread server did not start")
    return proc, ready.port


def time_once(work) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    rounds = parser.parse_args().rounds
    proc, port = start_server()
    clients = []
    try:
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        with Observer(pid=proc.pid) as observer:
            deadline = time.monotonic() + 30
            while len(observer.sample().processes[0].threads) < CONNECTIONS + 1:
                if time.monotonic() > deadline:
                    raise RuntimeError("the lab did not settle")
                time.sleep(0.1)
            snapshot = observer.sample()
            waits = [getattr(t, "syscall", None) for t in snapshot.processes[0].threads]
            known = sum(map(bool, waits))
            print(f"lab: {len(waits)} threads, {len(snapshot.connections)} connections, waits known: {known}")
            ps = ["ps", "-L", "-o", "tid,stat,wchan", "-p", str(proc.pid)]
            samples, refs = [], []
            cpu_started = time.process_time()
            for _ in range(rounds):
                samples.append(time_once(observer.sample))
                refs.append(time_once(lambda: subprocess.run(ps, stdout=subprocess.DEVNULL, check=True)))
            cpu_ms = (time.process_time() - cpu_started) * 1000 / rounds  # ps runs in its own process
        sample_ms, ps_ms = statistics.median(samples), statistics.median(refs)
        print(f"sample {sample_ms:.2f} ms   ps -L wchan {ps_ms:.2f} ms   ({rounds} rounds, medians)")
        print(f"sample_ms={sample_ms:.2f}")
        print(f"sample_cpu_ms={cpu_ms:.2f}")
        print(f"ratio={sample_ms / ps_ms:.2f}")
        return 0
    finally:
        for sock in clients:
            sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
