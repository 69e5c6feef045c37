"""The client fleet: real TCP clients that behave like people at telnet, on the caller's loop.

Each client is one asyncio task around a non-blocking socket. The task waits for its socket
through one future at a time (readable, writable, a timer, or "stop"), so closing a client
is only ever: mark it, resolve that future, and let the task close its own socket. Nothing
is cancelled while it sits in a read, which is how a close can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from svcviz.clients.protocols import NAMES as PROTOCOL_NAMES
from svcviz.clients.protocols import PROTOCOLS, Protocol
from svcviz.clients.view import CONNECTED, KINDS, ClientView

if TYPE_CHECKING:
    from svcviz.observe.netns import NetNs

# A socket address as getaddrinfo gives it: (host, port) for IPv4, (host, port, flow, scope) for IPv6.
SockAddr = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]

# The options each kind takes, with their defaults.
DEFAULTS: dict[str, dict[str, object]] = {
    "interactive": {},
    "silent": {},
    "scripted": {"queries": 3, "every": 1.0, "query": None},  # None: the protocol's own question
    "half-close": {"query": None},
}
CLOSE_WAIT = 2.0  # seconds a closing task gets to finish on its own (it needs one loop turn)
ADD_BATCH = 50  # clients started per loop turn: a big add must not stall the dashboard
RECV_SIZE = 65536


class FleetError(Exception):
    """A request the fleet cannot carry out (unknown client, kind or option): one line."""


class FleetFull(FleetError):
    """The cap on open clients is reached; `added` holds the ids that still fitted."""

    def __init__(self, message: str, added: list[int]) -> None:
        super().__init__(message)
        self.added = added


class _Options(NamedTuple):
    """A client's checked options; a kind that takes no such option keeps the default here."""

    queries: int = 0  # scripted: how many questions in all
    every: float = 0.0  # scripted: seconds between them
    query: str = ""  # scripted, half-close: the question


class _Client:
    """The mutable state of one client, owned by its task; the world sees ClientView."""

    def __init__(self, client_id: int, kind: str, options: _Options, protocol: Protocol) -> None:
        self.id = client_id
        self.kind = kind
        self.options = options
        self.protocol = protocol  # fixed at its start: a client keeps the language it began in
        self.started = time.time()
        self.state = "connecting"
        self.sock: socket.socket | None = None
        self.local_port: int | None = None
        self.connect_ms: float | None = None
        self.connected = False
        self.sent = 0
        self.received = 0
        self.asked = 0
        self.answered = 0
        self.last_reply: str | None = None
        self.error: str | None = None
        self.outbox = bytearray()
        self.partial = bytearray()
        self.shut_write_when_sent = False
        self.next_ask = 0.0
        self.ending: tuple[str, str | None] | None = None  # (final state, error) once decided
        self.wakeup: asyncio.Future[str] | None = None
        self.hung_timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.half_open = False  # told by the lab, from the server's side: see Fleet.mark_half_open

    @property
    def open(self) -> bool:
        return self.ending is None or self.sock is not None

    def view(self) -> ClientView:
        return ClientView(
            id=self.id,
            kind=self.kind,
            state="half-open" if self.half_open and self.state in CONNECTED else self.state,
            open=self.open,
            local_port=self.local_port,
            connect_ms=self.connect_ms,
            sent=self.sent,
            received=self.received,
            last_reply=self.last_reply,
            error=self.error,
            started=self.started,
            asked=self.asked,
            answered=self.answered,
        )


def _wake(future: asyncio.Future[str], why: str) -> None:
    if not future.done():
        future.set_result(why)


class Fleet:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        cap: int = 2000,
        connect_timeout: float = 10.0,
        hung_after: float = 1.0,
        on_change: Callable[[], None] | None = None,
        kept_finished: int = 200,
        protocol: str = "line",
    ) -> None:
        self.protocol = PROTOCOLS["line"]
        self.set_protocol(protocol)
        self.host = host
        self.port = port
        self.cap = cap
        self.connect_timeout = connect_timeout
        self.hung_after = hung_after
        self.on_change = on_change
        self.kept_finished = kept_finished
        self.version = 0
        self._finished = 0  # finished clients still in _clients
        self._clients: dict[int, _Client] = {}  # in id order
        self._ids = itertools.count(1)
        self._views: tuple[ClientView, ...] | None = ()
        self._addresses: dict[tuple[str, int], tuple[int, SockAddr]] = {}
        self.netns: NetNs | None = None  # the server's network namespace when not ours

    # -- the API ---------------------------------------------------------------------

    def retarget(self, host: str, port: int, netns: NetNs | None = None) -> None:
        """Clients added from now on connect to host:port (from inside netns, a server in
        another network namespace: a socket connects from the namespace it was made in);
        open ones stay where they are."""
        self.host, self.port, self.netns = host, port, netns

    def set_protocol(self, name: str) -> None:
        """Clients added from now on speak this (line, http, redis, raw); open ones keep theirs."""
        if name not in PROTOCOLS:
            raise FleetError(f"unknown client protocol {name!r} (one of: {', '.join(PROTOCOL_NAMES)})")
        self.protocol = PROTOCOLS[name]

    def clients(self) -> tuple[ClientView, ...]:
        if self._views is None:
            self._views = tuple(c.view() for c in self._clients.values())
        return self._views

    def alive(self) -> int:
        return sum(1 for c in self._clients.values() if c.open)

    async def add(self, kind: str = "interactive", count: int = 1, **options: object) -> list[int]:
        settings = _settings(kind, count, options, self.protocol)
        family, address = await self._resolve(self.host, self.port)
        loop = asyncio.get_running_loop()
        added: list[int] = []
        room = self.cap - self.alive()
        while len(added) < count and room > 0:
            client = _Client(next(self._ids), kind, settings, self.protocol)
            self._clients[client.id] = client
            client.task = loop.create_task(self._run(client, family, address))
            added.append(client.id)
            room -= 1
            if len(added) % ADD_BATCH == 0 and len(added) < count:
                self._changed()
                await asyncio.sleep(0)  # the batch connects in this turn, the caller's code too
                room = self.cap - self.alive()  # others may have added or closed meanwhile
        if added:
            self._changed()
        if len(added) < count:
            raise FleetFull(f"client cap reached: {self.cap} clients", added)
        return added

    async def send_line(self, client_id: int, text: str) -> None:
        """The user types a line into the client (telnet sends it with CRLF)."""
        client = self._get(client_id)
        if "\n" in text or "\r" in text:
            raise FleetError("one line at a time: no newline in the text")
        if not client.open or client.ending is not None:
            raise FleetError(f"client #{client_id} is {client.state}: it cannot send")
        if client.shut_write_when_sent or (client.kind == "half-close" and client.connected):
            raise FleetError(f"client #{client_id} has shut down its sending side")
        self._ask(client, text)

    async def close(self, client_id: int) -> None:
        """The user quits telnet: the client closes its connection (state "quit")."""
        client = self._get(client_id)
        self._end(client, "quit", None)
        await self._settle([client])

    async def close_all(self) -> None:
        clients = [c for c in self._clients.values() if c.open]
        for client in clients:
            self._end(client, "quit", None)
        await self._settle(clients)

    def forget_finished(self) -> int:
        """Drop every finished client from the list (the user clears it); how many went."""
        finished = [i for i, c in self._clients.items() if not c.open]
        for client_id in finished:
            del self._clients[client_id]
        self._finished = 0
        if finished:
            self._changed()
        return len(finished)

    async def start_over(self) -> None:
        """A new lesson: every client closed and forgotten, numbering from #1 again."""
        await self.aclose()
        self._clients.clear()
        self._finished = 0
        self._ids = itertools.count(1)
        self._changed()

    async def aclose(self) -> None:
        """Close every client and wait for every task: for shutdown."""
        await self.close_all()
        await self._settle(list(self._clients.values()))

    def mark_server_gone(self, local_port: int) -> None:
        """The process that served this client is gone: without EOF soon, the client hangs."""
        for client in self._clients.values():
            if (
                client.local_port == local_port
                and client.connected
                and client.ending is None
                and client.hung_timer is None
            ):
                client.hung_timer = asyncio.get_running_loop().call_later(self.hung_after, self._hang, client)

    def mark_half_open(self, local_ports: set[int]) -> None:
        """Exactly these clients are half-open: connected on their side, while the server's
        side has no connection for them (it dropped the final ACK). Only the kernel's view of
        the server tells; the client cannot."""
        changed = False
        for client in self._clients.values():
            half_open = client.local_port in local_ports and client.state in CONNECTED
            if half_open != client.half_open:
                client.half_open, changed = half_open, True
        if changed:
            self._changed()

    # -- one client's life -----------------------------------------------------------

    async def _run(self, client: _Client, family: int, address: SockAddr) -> None:
        try:
            if client.ending is None and self._open_socket(client, family) and await self._connect(client, address):
                await self._converse(client)
        except Exception as exc:  # a bug here must not take the dashboard down: show it
            self._end(client, "error", f"{type(exc).__name__}: {exc}")
        finally:
            self._release(client)

    def _open_socket(self, client: _Client, family: int) -> bool:
        try:
            if self.netns is None:
                sock = socket.socket(family, socket.SOCK_STREAM)
            else:
                sock = self.netns.socket(family, socket.SOCK_STREAM)
        except OSError as exc:  # EMFILE: this process's fd table is full; or netns.NamespaceError
            self._end(client, "error", f"socket: {exc.strerror or exc}")
            return False
        sock.setblocking(False)
        client.sock = sock
        return True

    async def _connect(self, client: _Client, address: SockAddr) -> bool:
        sock = _sock(client)
        began = time.monotonic()
        err = sock.connect_ex(address)
        with contextlib.suppress(OSError):
            client.local_port = sock.getsockname()[1] or None
        self._changed()
        if err in (errno.EINPROGRESS, errno.EAGAIN):
            why = await self._wait(client, read=False, write=True, timeout=self.connect_timeout)
            if why == "stop":
                return False
            if why == "timeout":
                self._end(client, "timed_out", f"no answer to SYN in {self.connect_timeout:g} s")
                return False
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            state = "refused" if err == errno.ECONNREFUSED else "error"
            self._end(client, state, f"connect: {os.strerror(err)}")
            return False
        client.connect_ms = (time.monotonic() - began) * 1000
        client.connected = True
        client.next_ask = time.monotonic()
        if client.kind == "half-close":
            client.shut_write_when_sent = True
            self._ask(client, client.options.query)
        elif client.kind == "interactive" and client.protocol.greeting is not None:
            self._ask(client, client.protocol.greeting)  # `c` on a web server: a real GET
        self._settle_state(client)
        self._flush(client)
        self._changed()
        return True

    async def _converse(self, client: _Client) -> None:
        """Read replies, send what is queued, and run the script, until the client ends."""
        scripted = client.kind == "scripted"
        queries = client.options.queries
        while client.ending is None:
            timeout = None
            if scripted and client.asked < queries:
                timeout = max(0.0, client.next_ask - time.monotonic())
            why = await self._wait(client, read=True, write=bool(client.outbox), timeout=timeout)
            if why == "read":
                self._read(client)
            elif why == "write":
                self._flush(client)
            if scripted and client.ending is None:
                if client.asked < queries and time.monotonic() >= client.next_ask:
                    client.next_ask += client.options.every
                    self._ask(client, client.options.query)
                elif client.asked >= queries and client.answered >= client.asked:
                    self._end(client, "quit", None)

    async def _wait(self, client: _Client, *, read: bool, write: bool, timeout: float | None) -> str:
        """ "read", "write", "timeout" or "stop": whichever comes first."""
        if client.ending is not None:
            return "stop"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        client.wakeup = future
        fd = _sock(client).fileno()
        if read:
            loop.add_reader(fd, _wake, future, "read")
        if write:
            loop.add_writer(fd, _wake, future, "write")
        timer = loop.call_later(timeout, _wake, future, "timeout") if timeout is not None else None
        try:
            return await future
        finally:
            client.wakeup = None
            if read:
                loop.remove_reader(fd)
            if write:
                loop.remove_writer(fd)
            if timer is not None:
                timer.cancel()

    def _read(self, client: _Client) -> None:
        try:
            data = _sock(client).recv(RECV_SIZE)
        except BlockingIOError:
            return
        except ConnectionResetError:
            self._end(client, "reset", "connection reset by the server")
            return
        except OSError as exc:
            self._end(client, "error", f"recv: {exc.strerror}")
            return
        if not data:
            self._end(client, "closed", None)
            return
        client.received += len(data)
        client.partial += data
        *lines, rest = client.partial.split(b"\n")
        client.partial = bytearray(rest)
        protocol = client.protocol
        for raw in lines:
            line = raw.rstrip(b"\r").decode(errors="replace")
            if protocol.shows(line):
                client.last_reply = line
            if protocol.answers(line):
                client.answered += 1
        self._settle_state(client)
        self._changed()

    def _ask(self, client: _Client, text: str) -> None:
        if client.protocol.asks(text):
            client.asked += 1  # each protocol answers each request with one answer line
        client.outbox += client.protocol.request(text, self.host, self.port)
        if client.connected:
            self._flush(client)
            self._settle_state(client)
        self._changed()

    def _flush(self, client: _Client) -> None:
        """Send what the kernel takes now; the task waits for room for the rest."""
        if client.ending is not None or not client.connected:
            return
        try:
            if client.outbox:
                sent = _sock(client).send(client.outbox)
                client.sent += sent
                del client.outbox[:sent]
            if not client.outbox and client.shut_write_when_sent:
                _sock(client).shutdown(socket.SHUT_WR)
                client.shut_write_when_sent = False
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            self._end(client, "reset", "connection reset by the server")
        except OSError as exc:
            self._end(client, "error", f"send: {exc.strerror}")
        if client.outbox and client.wakeup is not None:
            _wake(client.wakeup, "send")  # the task waits for writability from now on

    def _settle_state(self, client: _Client) -> None:
        if client.ending is not None or client.state == "hung":
            return
        if client.asked > client.answered:
            client.state = "waiting"
        else:
            client.state = "served" if client.answered else "idle"

    def _hang(self, client: _Client) -> None:
        client.hung_timer = None
        if client.ending is None:
            client.state = "hung"
            client.error = f"no EOF {self.hung_after:g} s after its server process exited"
            self._changed()

    def _end(self, client: _Client, state: str, error: str | None) -> None:
        """Decide how the client ends (the first decision stands) and wake its task."""
        if client.ending is not None:
            return
        client.ending = (state, error)
        if client.wakeup is not None:
            _wake(client.wakeup, "stop")

    def _release(self, client: _Client) -> None:
        """The task's last step: close the socket and show the final state."""
        if client.hung_timer is not None:
            client.hung_timer.cancel()
            client.hung_timer = None
        if client.ending is None:
            client.ending = ("quit", None)
        if client.sock is not None:
            client.sock.close()
            client.sock = None
        client.state, error = client.ending
        client.error = error or client.error
        self._finished += 1
        self._forget_old()
        self._changed()

    async def _settle(self, clients: list[_Client]) -> None:
        """Wait, bounded, for the tasks of clients told to end; cancel any that do not."""
        tasks = [c.task for c in clients if c.task is not None and not c.task.done()]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=CLOSE_WAIT)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=CLOSE_WAIT)

    # -- bookkeeping -----------------------------------------------------------------

    def _changed(self) -> None:
        self.version += 1
        self._views = None
        if self.on_change is not None:
            self.on_change()

    def _forget_old(self) -> None:
        """Keep every open client and the newest `kept_finished` finished ones, so a long
        churn does not grow memory; pruned only past twice that, so it is not quadratic."""
        if self._finished <= 2 * self.kept_finished:
            return
        finished = [i for i, c in self._clients.items() if not c.open]
        for client_id in finished[: max(0, len(finished) - self.kept_finished)]:
            del self._clients[client_id]
        self._finished = min(len(finished), self.kept_finished)

    def _get(self, client_id: int) -> _Client:
        try:
            return self._clients[client_id]
        except KeyError:
            raise FleetError(f"no client #{client_id}") from None

    async def _resolve(self, host: str, port: int) -> tuple[int, SockAddr]:
        key = (host, port)
        if key not in self._addresses:
            if not 0 < port <= 65535:
                raise FleetError(f"port {port} is not a port clients can connect to")
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise FleetError(f"cannot resolve {host!r}: {exc}") from None
            family, _, _, _, address = infos[0]
            self._addresses[key] = (family, address)
        return self._addresses[key]


def _sock(client: _Client) -> socket.socket:
    """The socket of a client between its open and its release (the only time its task uses it)."""
    assert client.sock is not None, f"client #{client.id} has no socket"
    return client.sock


def _settings(kind: str, count: int, options: dict[str, object], protocol: Protocol) -> _Options:
    """The kind's options with the caller's, checked: a clear FleetError for anything off."""
    if kind not in DEFAULTS:
        raise FleetError(f"unknown client kind {kind!r} (one of: {', '.join(KINDS)})")
    if not isinstance(count, int) or count < 0:
        raise FleetError(f"client count must be a whole number >= 0, not {count!r}")
    settings = dict(DEFAULTS[kind])
    unknown = sorted(set(options) - set(settings))
    if unknown:
        raise FleetError(f"{kind} clients take no option {', '.join(unknown)}")
    settings.update(options)
    if "queries" in settings and (not isinstance(settings["queries"], int) or settings["queries"] < 1):
        raise FleetError(f"queries must be a whole number >= 1, not {settings['queries']!r}")
    if "every" in settings and not (isinstance(settings["every"], (int, float)) and settings["every"] >= 0):
        raise FleetError(f"every must be seconds >= 0, not {settings['every']!r}")
    query = settings.get("query")
    if query is not None and (not isinstance(query, str) or "\n" in query or "\r" in query):
        raise FleetError(f"query must be one line of text, not {query!r}")
    queries, every = settings.get("queries", 0), settings.get("every", 0.0)
    assert isinstance(queries, int) and isinstance(every, (int, float))  # checked above
    return _Options(queries, every, protocol.default_query if query is None else query)
