"""What the picture panel costs per sample, against the observer's sample, on the same lab.

The lab is observe.py's main one: a fork server with 200 children and 1,000 client
connections from this process (200 served by a child each, 800 in the accept queue).
Each round takes one observer sample, then does what the panel does with it: the layout,
the painting into cells, and the cells into the Strips Textual's compositor is handed
(the panel's render_line returns them as they are). The panel lays out again only when
what it draws changed (layout.drawn_key): `picture_gated_ms` is its cost per sample on
the live lab (mostly that comparison), `picture_build_ms` the cost when something did
change (forced every round). Medians; `ratio` is picture_build_ms / sample_ms.

    .venv/bin/python benchmarks/picture.py [--rounds N] [--size 160x45]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time

from textual.strip import Strip

from observe import Lab, machine, raise_fd_limit, wait_for
from svcviz.clients import ClientView
from svcviz.observe.observer import Observer
from svcviz.picture import layout
from svcviz.picture.draw import paint
from svcviz.picture.layout import drawn_key


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
    raise_fd_limit(1000 + 256)
    print(f"machine: {machine()}")
    lab = Lab("fork", 201, 1000)
    try:
        mine = views(lab.clients)
        with Observer(pid=lab.proc.pid) as observer:
            wait_for(lambda: lab.settled(observer))
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
                new_key = drawn_key(snapshot, mine, "fork")
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
        lab.close()


if __name__ == "__main__":
    sys.exit(main())
