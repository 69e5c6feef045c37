"""accept-once (serviceserver01): accept one connection, close the listening socket.

    $ svcviz serve accept-once &
    svcviz: accept-once listening on 127.0.0.1:6168 (pid 4242)
    $ telnet localhost 6168
    discard
    discard,9
    ^]quit
    svcviz: note: served one client; exiting
    $ telnet localhost 6168
    telnet: Unable to connect to remote host: Connection refused

accept() gives a new fd for the connection; the listening fd stays where it is. This
server closes the listening fd right after its first accept, so the kernel refuses every
later client (RST to their SYN): one client served, and that is all.
"""

from __future__ import annotations

from svcviz.servers.config import ServerConfig
from svcviz.servers.net import Acceptor, announce, handle_connection, make_listen
from svcviz.servers.notice import NOTE, notify


def serve(config: ServerConfig) -> None:
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    cfd = Acceptor().accept(fd)  # syscall: accept
    fd.close()  # the mistake: nobody is listening any more
    handle_connection(cfd, config.delay)
    cfd.close()
    notify(NOTE, "served one client; exiting")
