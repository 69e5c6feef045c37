"""thread: a thread per connection in one process (serviceserver07).

    $ svcviz serve thread --max-memory 64 &
    svcviz: thread listening on 127.0.0.1:6168 (pid 4242)
    $ svcviz blast 30 --port 6168 --hold 1     # 8 MB of stack each: 5 threads fit
    svcviz: error: can't start a thread for 127.0.0.1:57194: can't start new thread (--max-memory 64 MB)
    svcviz: error: can't start a thread for 127.0.0.1:57204: can't start new thread (--max-memory 64 MB)
    ...

A thread is an abstract CPU inside one process: it shares the fd table and the memory,
and costs far less than a process. pthread_create() (threading.Thread.start()) per client;
connection_thread handles the client and exits. What goes wrong: every thread's stack is
address space, so the internet still decides how much memory you use. The lecture's
server ran out of memory at 482 connections; `--max-memory` (RLIMIT_AS) makes that
happen here, and the server says so and keeps serving the clients it has. At the limit,
a thread already serving may be the one whose next buffer does not fit: it says so, and
closes its connection.
"""

from __future__ import annotations

import socket
import threading

from svcviz.servers.config import ServerConfig
from svcviz.servers.limits import ThreadCap
from svcviz.servers.net import Acceptor, announce, handle_connection, make_listen
from svcviz.servers.notice import ERROR, notify
from svcviz.servers.ready import address_text


def connection_thread(cfd: socket.socket, delay: float, peer: str) -> None:
    try:
        handle_connection(cfd, delay)
    except MemoryError:  # the stacks filled the address space: this thread's next buffer did not fit
        notify(ERROR, f"out of memory serving {peer}: its connection is closed")
    cfd.close()  # syscall: close


def serve(config: ServerConfig) -> None:
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    acceptor = Acceptor()
    cap = ThreadCap(config.cap_threads)
    while True:
        cap.wait_for_room()  # syscall: sleep (main)
        cfd, peer = acceptor.accept_peer(fd)  # syscall: accept
        client = address_text(*peer[:2])
        worker = threading.Thread(target=connection_thread, args=(cfd, config.delay, client), daemon=True)
        try:
            worker.start()  # syscall: clone
        except RuntimeError as exc:  # pthread_create failed: no memory for another stack
            limit = f" (--max-memory {config.max_memory} MB)" if config.max_memory else ""
            notify(ERROR, f"can't start a thread for {client}: {exc}{limit}")
            cfd.close()
