"""listen-only (the lecture's serviceserver00): read from the listening socket itself.

    $ svcviz serve listen-only
    svcviz: listen-only listening on 127.0.0.1:6168 (pid 4242)
    svcviz: error: read from the listening socket: Transport endpoint is not connected (ENOTCONN)

A listening socket is a stake in the ground, not a connection: reading it fails. The
kernel still completes every client's handshake and queues it, so `telnet localhost 6168`
connects, and nobody ever answers. Watch the accept queue fill to backlog+1; after that,
new clients' SYNs are dropped and they sit in SYN_SENT.
"""

from __future__ import annotations

import errno
import signal

from svcviz.servers.config import ServerConfig
from svcviz.servers.net import announce, make_listen
from svcviz.servers.notice import ERROR, notify


def serve(config: ServerConfig) -> None:
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    try:
        fd.recv(1024)  # syscall: read; handle_connection(f, f) on the listening fd
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        notify(ERROR, f"read from the listening socket: {exc.strerror} ({code})")
    while True:  # keep the socket, and its queue, for the user to look at
        signal.pause()  # syscall: pause
