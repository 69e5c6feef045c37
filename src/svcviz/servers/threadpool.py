"""threadpool: a fixed pool of threads sharing one listening socket.

    $ svcviz serve threadpool --workers 4 &
    svcviz: threadpool listening on 127.0.0.1:6168 (pid 4242)
    $ ps -L -o pid,lwp,stat,comm -p 4242      # the main thread and 4 workers
      PID   LWP STAT COMMAND
     4242  4242 Sl   svcviz
     4242  4244 Sl   svcviz
     4242  4245 Sl   svcviz
     4242  4246 Sl   svcviz
     4242  4247 Sl   svcviz

Prefork with threads: N threads, started before any client arrives, each blocked in
accept() on the one listening socket. N clients are served at once; client N+1 waits in
the accept queue. Memory and threads are bounded by you, not by the internet.
"""

from __future__ import annotations

import signal
import threading

from svcviz.servers.config import ServerConfig
from svcviz.servers.net import announce, make_listen
from svcviz.servers.serial import serve_clients


def serve(config: ServerConfig) -> None:
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    for _ in range(config.workers):
        worker = threading.Thread(target=serve_clients, args=(fd, config.delay), daemon=True)
        worker.start()  # syscall: clone
    while True:  # the main thread only waits for signals
        signal.pause()  # syscall: pause
