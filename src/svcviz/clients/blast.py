"""`svcviz blast N --port P`: the lecture's serviceblaster.

Open N connections as fast as the kernel allows (or at --rate per second), optionally
send a query on each, hold them, close them, and say what happened to each, truthfully:
connected, refused (ECONNREFUSED), reset (ECONNRESET), timed out (the SYN was dropped: a
full accept queue), or another error (out of fds, out of ports). And, when the server is on
this machine, how many of the connections its side knows: with SYN cookies the kernel can
complete our handshake, then drop the final ACK when the accept queue is full, so a client
may be "connected" to a server that has no record of it (half-open).

Speed is the point, so this is not the fleet: one non-blocking connect() after another,
asked again in batches (on loopback most are done by then), epoll only for the slow ones,
and no per-connection task.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import resource
import select
import socket
import sys
import time
from argparse import Namespace
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from svcviz.observe.netns import NamespaceError, named
from svcviz.observe.sockdiag import ALL_STATES, SockDiag
from svcviz.observe.sockets import TcpRow, addr_host, read_proc_net_tcp

if TYPE_CHECKING:
    from svcviz.clients.fleet import SockAddr

MAX_CONNECTIONS = 1_000_000
SPARE_FDS = 32  # stdio, epoll, imports: what the process needs besides the connections
HARVEST_EVERY = 64  # connects issued between two looks at epoll
PROGRESS_PERIOD = 0.1
SETTLE = 0.05  # seconds for the last final ACKs to reach the server side before it is counted
SERVER_CLOSED = {"FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSING", "LAST_ACK", "CLOSE"}


class BlastError(Exception):
    """Bad arguments or an unusable target: one line, exit 2."""


class BlastResult:
    """The counts of one blast, kept by it as its connections end."""

    def __init__(self, requested: int) -> None:
        self.requested = requested
        self.connected = 0
        self.refused = 0
        self.timed_out = 0
        self.reset = 0
        self.errors = 0
        self.seconds = 0.0
        # The server side's view of our connections (None: the server is not on this machine).
        self.server_established: int | None = None
        self.server_closed: int | None = None
        self.latencies_ms: list[float] = []
        self.error_reasons: Counter[str] = Counter()

    def percentile(self, fraction: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]

    @property
    def half_open(self) -> int | None:
        """Connected on our side, with no connection on the server's: its final ACK dropped."""
        if self.server_established is None or self.server_closed is None:
            return None
        return max(0, self.connected - self.server_established - self.server_closed)

    def as_json(self) -> dict[str, object]:
        p50, p99 = self.percentile(0.50), self.percentile(0.99)
        return {
            "requested": self.requested,
            "connected": self.connected,
            "refused": self.refused,
            "timed_out": self.timed_out,
            "reset": self.reset,
            "errors": self.errors,
            "server_established": self.server_established,
            "server_closed": self.server_closed,
            "half_open": self.half_open,
            "seconds": round(self.seconds, 6),
            "connect_ms": {
                "p50": None if p50 is None else round(p50, 3),
                "p99": None if p99 is None else round(p99, 3),
            },
        }


class Progress:
    """A one-line bar on the terminal, redrawn at most ten times a second."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.shown = 0.0

    def show(self, result: BlastResult, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.shown < PROGRESS_PERIOD:
            return
        self.shown = now
        width = 30
        filled = width * done // max(1, self.total)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
            f"connected {result.connected}  failed {done - result.connected}"
        )
        self.stream.flush()

    def clear(self) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()


class Blaster:
    def __init__(
        self,
        family: int,
        address: SockAddr,
        count: int,
        *,
        timeout: float,
        rate: float | None,
        payload: bytes | None,
        progress: Progress | None,
    ) -> None:
        self.family = family
        self.address = address
        self.timeout = timeout
        self.rate = rate
        self.payload = payload
        self.progress = progress
        self.result = BlastResult(requested=count)
        self.epoll = select.epoll()
        self.fresh: list[tuple[socket.socket, float]] = []  # connects issued since the last harvest
        self.pending: dict[int, tuple[socket.socket, float]] = {}  # fd -> (socket, start): issue order
        self.established: list[socket.socket] = []
        self.first_start: float | None = None
        self.last_done: float | None = None

    def run(self) -> BlastResult:
        try:
            self.connect_all()
        finally:
            self.epoll.close()
        if self.first_start is not None and self.last_done is not None:
            self.result.seconds = self.last_done - self.first_start
        return self.result

    def close_all(self) -> None:
        for sock, _ in [*self.fresh, *self.pending.values()]:
            sock.close()
        self.fresh.clear()
        self.pending.clear()
        for sock in self.established:
            sock.close()
        self.established.clear()

    def connect_all(self) -> None:
        count = self.result.requested
        began = time.perf_counter()
        for i in range(count):
            if self.rate:
                self.wait_until(began + i / self.rate)
            elif i % HARVEST_EVERY == HARVEST_EVERY - 1:
                self.harvest(0)
            self.connect_one()
        self.harvest(0)
        while self.pending:
            oldest = next(iter(self.pending.values()))[1]
            self.harvest(max(0.0, oldest + self.timeout - time.perf_counter()))
        if self.progress:
            self.progress.show(self.result, count, force=True)

    def wait_until(self, moment: float) -> None:
        while True:
            left = moment - time.perf_counter()
            self.harvest(max(0.0, left))
            if left <= 0:
                return

    def connect_one(self) -> None:
        try:
            # Non-blocking from birth: one syscall fewer than setblocking(False) after.
            sock = socket.socket(self.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        except OSError as exc:
            self.fail(exc.errno)
            return
        started = time.perf_counter()
        if self.first_start is None:
            self.first_start = started
        err = sock.connect_ex(self.address)
        if err == errno.EINPROGRESS:
            self.fresh.append((sock, started))
        else:
            self.finish(sock, started, err, time.perf_counter())

    def harvest(self, timeout: float) -> None:
        """Settle the connects in flight: ask each fresh one again (one syscall: on
        loopback most are done already), and leave epoll only the truly slow ones."""
        now = time.perf_counter()
        for sock, started in self.fresh:
            err = sock.connect_ex(self.address)
            if err in (errno.EALREADY, errno.EINPROGRESS):
                self.pending[sock.fileno()] = (sock, started)
                self.epoll.register(sock.fileno(), select.EPOLLOUT)
            else:
                self.finish(sock, started, 0 if err == errno.EISCONN else err, now)
        self.fresh.clear()
        if self.pending or timeout > 0:
            events = self.epoll.poll(timeout)
            now = time.perf_counter()
            for fd, _ in events:
                sock, started = self.pending.pop(fd)
                self.epoll.unregister(fd)
                self.finish(sock, started, sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), now)
            self.expire(now)
        if self.progress:
            self.progress.show(self.result, self.done())

    def expire(self, now: float) -> None:
        """Connects still in SYN_SENT after the timeout: their SYNs were dropped."""
        for fd, (sock, started) in list(self.pending.items()):
            if now - started < self.timeout:
                break  # issue order: the rest are younger
            del self.pending[fd]
            self.epoll.unregister(fd)
            sock.close()
            self.result.timed_out += 1

    def finish(self, sock: socket.socket, started: float, err: int, now: float) -> None:
        if err == 0:
            self.result.connected += 1
            self.result.latencies_ms.append((now - started) * 1000)
            self.last_done = now
            self.established.append(sock)
            if self.payload:
                try:
                    sock.send(self.payload)
                except OSError:
                    pass  # the connection counts as made; what the server does next is its business
            return
        sock.close()
        self.last_done = now
        self.fail(err)

    def fail(self, err: int | None) -> None:
        if err == errno.ECONNREFUSED:
            self.result.refused += 1
        elif err == errno.ETIMEDOUT:
            self.result.timed_out += 1
        elif err == errno.ECONNRESET:
            self.result.reset += 1
        else:
            self.result.errors += 1
            self.result.error_reasons[errno.errorcode.get(err, str(err)) if err else "unknown"] += 1

    def done(self) -> int:
        r = self.result
        return r.connected + r.refused + r.timed_out + r.reset + r.errors

    def count_server_side(self, port: int) -> None:
        """What the server's side holds for our connections, from the kernel's socket table
        (sock_diag, as the observer asks it), or nothing if nothing here listens on port."""
        ours = set()
        for sock in self.established:
            with contextlib.suppress(OSError):
                host, local_port = sock.getsockname()[:2]
                ours.add((host.removeprefix("::ffff:"), local_port))
        time.sleep(SETTLE)
        rows = server_rows(port)
        if not any(row.state == "LISTEN" for row in rows):
            return
        mine = [row for row in rows if (addr_host(row.remote).removeprefix("::ffff:"), row.remote_port) in ours]
        self.result.server_established = sum(row.state in ("ESTABLISHED", "CLOSE_WAIT") for row in mine)
        self.result.server_closed = sum(row.state in SERVER_CLOSED for row in mine)


def server_rows(port: int) -> list[TcpRow]:
    """Every socket on this machine whose local port is port (the server's side)."""
    try:
        diag = SockDiag()
    except OSError:
        return [row for row in read_proc_net_tcp(frozenset({port})) if row.local_port == port]
    try:
        return [
            row for family in (socket.AF_INET, socket.AF_INET6) for row in diag.dump(family, ALL_STATES, sport=port)
        ]
    finally:
        diag.close()


def raise_fd_limit(needed: int) -> str | None:
    """Raise this process's RLIMIT_NOFILE as far as needed and allowed; what was done, to say."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if needed <= soft:
        return None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        target = soft
    if target >= needed:
        return f"raised the open-file limit from {soft} to {target}"
    return (
        f"{needed} open files needed, the limit allows {target} (hard limit {hard}): "
        f"connections past that fail with EMFILE"
    )


def check_args(args: Namespace) -> tuple[int, SockAddr, bytes | None]:
    if not 1 <= args.count <= MAX_CONNECTIONS:
        raise BlastError(f"N must be 1..{MAX_CONNECTIONS}, not {args.count}")
    if args.port == 0:
        raise BlastError("--port 0 is not a port to connect to")
    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        raise BlastError(f"--rate must be a number of connections per second > 0, not {args.rate}")
    if args.timeout <= 0:
        raise BlastError("--timeout must be more than 0 seconds")
    payload = None
    if args.query is not None:
        if not args.query.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in args.query):
            raise BlastError(f"--query must be one printable line, not {args.query!r}")
        payload = args.query.encode() + b"\r\n"
    try:
        infos = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlastError(f"cannot resolve host {args.host!r}: {getattr(exc, 'strerror', exc)}") from None
    family, _, _, _, address = infos[0]
    return family, address, payload


def summary(result: BlastResult, target: str) -> str:
    rate = (
        f"  ({result.connected / result.seconds:,.0f} connections/s)" if result.connected and result.seconds > 0 else ""
    )
    p50, p99 = result.percentile(0.5), result.percentile(0.99)
    rows = [
        ("requested", str(result.requested)),
        ("connected", str(result.connected)),
        ("refused", str(result.refused)),
        ("timed out", str(result.timed_out)),
        ("reset", str(result.reset)),
        ("errors", str(result.errors) + "".join(f"  {name} x{n}" for name, n in result.error_reasons.items())),
        ("seconds", f"{result.seconds:.4f}{rate}"),
    ]
    if p50 is not None:
        rows.append(("connect ms", f"p50 {p50:.3f}  p99 {p99:.3f}"))
    if result.server_established is None:
        rows.append(("server side", "unknown: nothing on this machine listens on that port"))
    else:
        closed = f", {result.server_closed} closed by it" if result.server_closed else ""
        rows.append(("server side", f"knows {result.server_established} of the {result.connected} connected{closed}"))
        if result.half_open:
            rows.append(
                (
                    "half-open",
                    f"{result.half_open}: the server dropped their final ACK (its accept queue was full; "
                    "with SYN cookies our side cannot tell)",
                )
            )
    return "\n".join([f"svcviz blast {target}"] + [f"  {name:<11} {value}" for name, value in rows])


def blast_main(args: Namespace) -> int:
    try:
        family, address, payload = check_args(args)
    except BlastError as exc:
        print(f"svcviz blast: {exc}", file=sys.stderr)
        return 2
    note = raise_fd_limit(args.count + SPARE_FDS)
    if note:
        print(f"svcviz blast: {note}", file=sys.stderr)
    try:
        netns = named(args.netns) if args.netns else None
    except NamespaceError as exc:
        print(f"svcviz blast: {exc}", file=sys.stderr)
        return 2
    progress = Progress(args.count, sys.stdout) if sys.stdout.isatty() and not args.json else None
    blaster = Blaster(
        family, address, args.count, timeout=args.timeout, rate=args.rate, payload=payload, progress=progress
    )

    def connect_and_count() -> BlastResult:
        result = blaster.run()
        blaster.count_server_side(args.port)
        return result

    try:
        # In another namespace the whole blast runs on a thread inside it: each socket, and
        # the sock_diag socket that counts the server's side, belongs to where it was made.
        try:
            result = netns.run(connect_and_count) if netns else connect_and_count()
        except NamespaceError as exc:
            print(f"svcviz blast: {exc}", file=sys.stderr)
            return 2
        if progress:
            progress.clear()
        # Said before the hold, so a script can look at the held connections meanwhile.
        if args.json:
            print(json.dumps(result.as_json()), flush=True)
        else:
            where = f" in {netns.title}" if netns else ""
            print(summary(result, f"{args.host}:{args.port}{where}"), flush=True)
            if args.hold and result.connected:
                print(f"  holding {result.connected} connections for {args.hold:g} s", flush=True)
        if args.hold:
            time.sleep(args.hold)
    finally:
        blaster.close_all()
    return 0 if result.connected == result.requested else 1
