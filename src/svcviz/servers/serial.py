"""serial (serviceserver03): one listening socket, one client at a time.

    $ svcviz serve serial &
    svcviz: serial listening on 127.0.0.1:6168 (pid 4242)
    $ ss -ltn 'sport = :6168'        # three telnets open, the first one being served
    State  Recv-Q Send-Q Local Address:Port Peer Address:Port
    LISTEN 2      8          127.0.0.1:6168      0.0.0.0:*

Every client connects, because the kernel completes the handshake and queues it, but
only the one accepted is served. The others' lines wait in the kernel until the first
client quits; then they are accepted in arrival order. A client that connects and never
quits holds everyone else hostage: the rookie mistake of giving control of your server
to other people on the network.
"""

from __future__ import annotations

import socket

from svcviz.servers.config import ServerConfig
from svcviz.servers.net import Acceptor, announce, handle_connection, make_listen


def serve_clients(fd: socket.socket, delay: float) -> None:
    """accept, handle, close, forever: one client at a time."""
    acceptor = Acceptor()
    while True:
        cfd = acceptor.accept(fd)  # syscall: accept
        handle_connection(cfd, delay)
        cfd.close()  # syscall: close


def serve(config: ServerConfig) -> None:
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    serve_clients(fd, config.delay)
