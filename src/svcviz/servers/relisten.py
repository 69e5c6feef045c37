"""relisten (serviceserver02): a new listening socket for every connection.

    $ svcviz serve relisten &
    svcviz: relisten listening on 127.0.0.1:6168 (pid 4242)
    $ telnet localhost 6168          # served
    $ telnet localhost 6168          # meanwhile, in another terminal:
    telnet: Unable to connect to remote host: Connection refused

The loop fixes accept-once's early exit, but it closes the listening socket while it
serves: at least one listening socket per connection over the program's life, and none
at all while a client is being served. A client that arrives then is refused, like
opening a file that does not exist.
"""

from __future__ import annotations

from svcviz.servers.config import ServerConfig
from svcviz.servers.net import Acceptor, announce, handle_connection, make_listen


def serve(config: ServerConfig) -> None:
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    port = fd.getsockname()[1]  # --port 0 picked one: keep coming back to it
    acceptor = Acceptor()
    while True:
        cfd = acceptor.accept(fd)  # syscall: accept
        fd.close()
        handle_connection(cfd, config.delay)
        cfd.close()
        fd = make_listen(config.host, port, config.backlog)
