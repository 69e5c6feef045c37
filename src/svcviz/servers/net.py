"""The pieces every model shares, named as in the lecture's C: make_listen, accept,
handle_connection."""

from __future__ import annotations

import errno
import os
import socket
import time

from svcviz.servers.config import ServerError
from svcviz.servers.notice import ERROR, NOTE, notify
from svcviz.servers.ready import Ready
from svcviz.services import LineReader, load_db, replies_for


def make_listen(host: str, port: int, backlog: int) -> socket.socket:
    """socket(), bind(), listen(): the lecture's make_listen, with its failures named."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServerError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(backlog)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(f"port {port} on {host} is already in use") from None
        if exc.errno == errno.EACCES:
            raise ServerError(f"port {port} is privileged: it needs root (use a port >= 1024)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ServerError(f"cannot listen on {host}: no such address on this machine") from None
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return listener


def announce(model: str, listener: socket.socket) -> None:
    """The one ready line on stdout that tells a script (or the lab) where we listen.

    The database (the lecture's cache) is loaded first, so a server that says it is ready
    answers its first request without opening /etc/services: an fd the first client would
    otherwise see come and go in the server's table.
    """
    load_db()
    host, port = listener.getsockname()[:2]
    print(Ready(model, host, port, os.getpid()).line(), flush=True)


class Acceptor:
    """accept(), which fails for real when the fd table is full (EMFILE).

    The lecture's C exits on a failed accept; a teaching server says so once and keeps
    trying, so the user can watch clients pile up in the backlog meanwhile.
    """

    BACKOFF = 0.2

    def __init__(self) -> None:
        self.failing = False

    def accept(self, listener: socket.socket) -> socket.socket:
        """accept(fd, NULL, NULL)."""
        return self.accept_peer(listener)[0]

    def accept_peer(self, listener: socket.socket) -> tuple[socket.socket, tuple[str, int]]:
        """accept(fd, &peer, &len): who connected, as the kernel recorded it at accept.

        Keep that record to name the client later: a client that has reset its connection
        since has no peer any more, and getpeername() fails (ENOTCONN).
        """
        while True:
            try:
                conn, peer = listener.accept()
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # accept(2): that client left before we took it; take the next
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                if not self.failing:
                    notify(ERROR, f"accept: {exc.strerror} ({errno.errorcode[exc.errno]})")
                    self.failing = True
                time.sleep(self.BACKOFF)
                continue
            if self.failing:
                notify(NOTE, "accept: working again")
                self.failing = False
            return conn, peer


def handle_connection(conn: socket.socket, delay: float = 0.0) -> None:
    """Answer each request line until the client closes: the lecture's handle_connection.

    It blocks in recv() while the client thinks: whoever calls it is stuck with this
    client until it leaves.
    """
    db = load_db()
    reader = LineReader()
    try:
        while data := conn.recv(65536):  # syscall: read
            for answer in replies_for(reader.feed(data), db):
                if delay:
                    time.sleep(delay)  # syscall: sleep
                conn.sendall(answer.encode() + b"\n")  # syscall: write
    except (ConnectionError, TimeoutError):  # the client reset or vanished: it is gone
        pass
