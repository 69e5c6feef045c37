"""prefork: a fixed pool of processes sharing one listening socket.

    $ svcviz serve prefork --workers 4 &
    svcviz: prefork listening on 127.0.0.1:6168 (pid 4242)
    $ ps -o pid,ppid,stat,comm --ppid 4242
      PID  PPID STAT COMMAND
     4243  4242 S    svcviz
     4244  4242 S    svcviz
     4245  4242 S    svcviz
     4246  4242 S    svcviz

The lecture's fix for a server the internet can fork to death: put fork in its own loop,
N times, before any client arrives. Every worker inherits the listening socket and blocks
in accept() on it; the kernel hands each new connection to one of them. N clients are
served at once; client N+1 waits in the accept queue until a worker is free. The process
count is yours to choose, not the internet's. A worker that dies is replaced.
"""

from __future__ import annotations

import os
import socket

from svcviz.servers.config import ServerConfig
from svcviz.servers.limits import Children
from svcviz.servers.net import announce, make_listen
from svcviz.servers.notice import NOTE, notify
from svcviz.servers.serial import serve_clients


def serve(config: ServerConfig) -> None:
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    pool = Children(config.workers, "pool size")
    for _ in range(config.workers):
        start_worker(pool, fd, config.delay)
    while True:
        pid, status = os.wait()  # syscall: wait
        notify(NOTE, f"worker {pid} exited ({_how(status)}); starting another")
        start_worker(pool, fd, config.delay)


def start_worker(pool: Children, fd: socket.socket, delay: float) -> None:
    pid = os.fork()  # syscall: clone
    if pid == 0:  # the child: a worker, accepting client after client
        try:
            pool.child_setup()
            serve_clients(fd, delay)
        finally:  # it never returns: a worker ends by a signal, or here on an error
            os._exit(1)  # syscall: exit


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {os.waitstatus_to_exitcode(status)}"
