"""What the picture panel costs per sample, against the observer's sample, on the same lab.

The lab is observe.py's: `svcviz serve fork --backlog 1024 --max-children 200` and 1,000
client connections from this process (200 served by a child each, 800 in the accept
queue). Each round takes one observer sample, then does what the panel does with it: the
layout, the painting into cells, and the cells into the Strips Textual's compositor is
handed (the panel's render_line returns them as they are). The panel lays out again only when the snapshot changed:
`picture_gated_ms` is its cost per sample on the live lab (mostly a comparison), and
`picture_build_ms` the cost when something did change (forced every round). Medians;
`ratio` is picture_build_ms / sample_ms, the share a changing picture adds to sampling.

    .venv/bin/python benchmarks/picture.py [--rounds N] [--size 160x45]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import sys
import time

from textual.strip import Strip

from observe import CHILDREN, CONNECTIONS, machine, raise_fd_limit, start_server, wait_for
from svcviz.clients import ClientView
from svcviz.observe.observer import Observer
from svcviz.picture import layout
from svcviz.picture.draw import paint


def views(sockets: list[socket.socket]) -> tuple[ClientView, ...]:
    """The lab's view of these clients, as the dashboard would be handed it."""
    return tuple(
        ClientView(i + 1, "silent", "waiting", True, s.getsockname()[1], 0.1, 0, 0, None, None, 0.0)
        for i, s in enumerate(sockets)
    )


def build(snapshot, clients, width: int, height: int) -> list[Strip]:
    return [Strip(row, width) for row in paint(layout(snapshot, clients, width, height, "fork")).segments()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--size", default="160x45", help="the panel's cells, WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    raise_fd_limit(CONNECTIONS + 256)
    print(f"machine: {machine()}")
    proc, port = start_server()
    clients: list[socket.socket] = []
    try:
        for _ in range(CONNECTIONS):
            clients.append(socket.create_connection(("127.0.0.1", port)))
        mine = views(clients)
        with Observer(pid=proc.pid) as observer:
            wait_for(lambda: len(observer.sample().processes) == CHILDREN + 1)
            snapshot = observer.sample()
            print(f"lab: {len(snapshot.processes)} processes, {len(snapshot.connections)} connections")
            sample, built, gated = [], [], []
            key = None
            for _ in range(args.rounds):
                started = time.perf_counter()
                snapshot = observer.sample()
                sample.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                build(snapshot, mine, width, height)
                built.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                new_key = (snapshot.listen, snapshot.processes, snapshot.connections, mine)
                if new_key != key:  # the panel's gate
                    key = new_key
                    build(snapshot, mine, width, height)
                gated.append((time.perf_counter() - started) * 1000)
        sample_ms, build_ms, gated_ms = (statistics.median(v) for v in (sample, built, gated))
        print(f"sample_ms={sample_ms:.2f}")
        print(f"picture_build_ms={build_ms:.2f}")
        print(f"picture_gated_ms={gated_ms:.3f}")
        print(f"ratio={build_ms / sample_ms:.2f}")
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
