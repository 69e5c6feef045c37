"""event: one process, one thread, many clients (selectors over epoll, non-blocking fds).

    $ svcviz serve event &
    svcviz: event listening on 127.0.0.1:6168 (pid 4242)
    $ svcviz blast 500 --port 6168 --hold 2
    $ ps -L -o pid,lwp,stat,comm -p 4242      # still one process, one thread
      PID   LWP STAT COMMAND
     4242  4242 S    svcviz

Instead of blocking in accept() or recv() for one client, ask the kernel which fds are
ready (epoll) and do only what will not block: accept a waiting connection, read what a
client sent, write what fits. No client can hold the server hostage, and the cost per
client is a buffer, not a process or a stack. What goes wrong: nothing may block. Here
`--delay` is waiting (a timer), as an event server waits on a backend; a CPU-bound request
would stall every client at once. And the buffer must be bounded: a client that sends
without reading would make it grow without end, so past OWED_LIMIT bytes of unsent replies
the server stops reading that client until it reads (back-pressure: the kernel's buffers
fill, and the client's send() blocks).
"""

from __future__ import annotations

import errno
import heapq
import itertools
import selectors
import socket
import time
from dataclasses import dataclass, field

from svcviz.servers.config import ServerConfig
from svcviz.servers.net import Acceptor, announce, make_listen
from svcviz.servers.notice import ERROR, NOTE, notify
from svcviz.services import LineReader, load_db, replies_for

OWED_LIMIT = 64 * 1024  # unsent reply bytes per client before we stop reading it
READ_SIZE = 4096  # one read's replies stay near the limit: a short request has a short reply


@dataclass
class Client:
    conn: socket.socket
    reader: LineReader = field(default_factory=LineReader)
    outbox: bytearray = field(default_factory=bytearray)
    pending: int = 0  # bytes of replies still waiting for their --delay
    closing: bool = False

    def owed(self) -> int:
        return len(self.outbox) + self.pending


class EventServer:
    def __init__(self, fd: socket.socket, delay: float) -> None:
        self.fd = fd
        self.delay = delay
        self.db = load_db()
        self.selector = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Client, bytes]] = []
        self.order = itertools.count()
        self.accept_failing = False
        fd.setblocking(False)
        self.selector.register(fd, selectors.EVENT_READ)

    def run(self) -> None:
        while True:
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
            if self.accept_failing:
                timeout = Acceptor.BACKOFF if timeout is None else min(timeout, Acceptor.BACKOFF)
            for key, events in self.selector.select(timeout):  # syscall: poll
                if key.fileobj is self.fd:
                    self.accept_all()
                elif events & selectors.EVENT_READ:
                    self.read(key.data)
                elif events & selectors.EVENT_WRITE:
                    self.flush(key.data)
            self.fire_timers()
            if self.accept_failing:
                self.accept_all()

    def accept_all(self) -> None:
        while True:
            try:
                conn, _ = self.fd.accept()  # syscall: accept
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE: the fd table is full; try again soon
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # accept(2): that client left before we took it; take the next
                if not self.accept_failing:
                    notify(ERROR, f"accept: {exc.strerror}")
                    self.accept_failing = True
                return
            if self.accept_failing:
                notify(NOTE, "accept: working again")
                self.accept_failing = False
            conn.setblocking(False)
            self.watch(Client(conn))

    def read(self, client: Client) -> None:
        try:
            data = client.conn.recv(READ_SIZE)  # syscall: read
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(client)
        if not data:  # EOF: answer what is still owed, then close
            client.closing = True
        for answer in replies_for(client.reader.feed(data), self.db):
            line = answer.encode() + b"\n"
            if self.delay:
                client.pending += len(line)
                heapq.heappush(self.timers, (time.monotonic() + self.delay, next(self.order), client, line))
            else:
                client.outbox += line
        self.flush(client)

    def fire_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, client, line = heapq.heappop(self.timers)
            client.pending -= len(line)
            if client.conn.fileno() >= 0:
                client.outbox += line
                self.flush(client)

    def flush(self, client: Client) -> None:
        if client.outbox:
            try:
                del client.outbox[: client.conn.send(client.outbox)]  # syscall: write
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                return self.close(client)
        self.watch(client)

    def watch(self, client: Client) -> None:
        """Ask epoll for exactly what this client needs next, or close it when done."""
        if client.closing and not client.outbox and not client.pending:
            return self.close(client)
        reading = not client.closing and client.owed() < OWED_LIMIT  # back-pressure
        events = (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if client.outbox else 0)
        registered = client.conn in self.selector.get_map()
        if events and registered:
            self.selector.modify(client.conn, events, client)
        elif events:
            self.selector.register(client.conn, events, client)
        elif registered:
            self.selector.unregister(client.conn)

    def close(self, client: Client) -> None:
        if client.conn.fileno() >= 0:
            if client.conn in self.selector.get_map():
                self.selector.unregister(client.conn)
            client.conn.close()  # syscall: close


def serve(config: ServerConfig) -> None:
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    EventServer(fd, config.delay).run()
