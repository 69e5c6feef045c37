"""fork: a process per connection (serviceserver03 + fork).

    $ svcviz serve fork &
    svcviz: fork listening on 127.0.0.1:6168 (pid 4242)
    $ ps -o pid,ppid,stat,args --ppid 4242     # two telnets; the first one quit
        PID    PPID STAT COMMAND
       4250    4242 Z    [svcviz] <defunct>
       4251    4242 S    svcviz serve fork

The parent accepts and forks; the child handles the connection and exits; the parent
goes straight back to accept(), so clients are served in parallel. What goes wrong:

- A child that exits stays a zombie until its parent waitpid()s it (`--sigchld default`).
  `--sigchld ignore` (signal(SIGCHLD, SIG_IGN)) stops *later* children from becoming
  zombies; `--sigchld reap` waitpid()s in a SIGCHLD handler. Live: SIGUSR1 moves
  default -> ignore -> reap -> default, SIGUSR2 reaps every zombie now.
- `--leak-fd`: the parent forgets to close its copy of the connection. The fd table
  fills up until accept() fails with EMFILE, and since the connection's last descriptor
  never closes, a client waiting for EOF waits forever.
- The internet decides how many processes you run. `--max-children` bounds it; svcviz's
  own cap (`--cap-procs`) always does.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType

from svcviz.servers.config import SIGCHLD_MODES, ServerConfig
from svcviz.servers.limits import Children, reap_all
from svcviz.servers.net import Acceptor, announce, handle_connection, make_listen
from svcviz.servers.notice import NOTE, notify
from svcviz.services import load_db


def _reap(signum: int, frame: FrameType | None) -> None:
    reap_all()


HANDLERS: dict[str, signal.Handlers | Callable[[int, FrameType | None], None]] = {
    "default": signal.SIG_DFL,
    "ignore": signal.SIG_IGN,
    "reap": _reap,
}


class SigchldControl:
    """The live SIGCHLD setting, moved on by SIGUSR1; SIGUSR2 reaps now."""

    def __init__(self, mode: str) -> None:
        self.set(mode)
        signal.signal(signal.SIGUSR1, lambda *_: self.set(self._next()))
        signal.signal(signal.SIGUSR2, lambda *_: notify(NOTE, f"reaped {reap_all()} children"))

    def _next(self) -> str:
        return SIGCHLD_MODES[(SIGCHLD_MODES.index(self.mode) + 1) % len(SIGCHLD_MODES)]

    def set(self, mode: str) -> None:
        self.mode = mode
        signal.signal(signal.SIGCHLD, HANDLERS[mode])
        notify(NOTE, f"SIGCHLD handling: {mode}")


def serve(config: ServerConfig) -> None:
    SigchldControl(config.sigchld)
    children = process_cap(config)
    load_db()  # the cache, loaded once: copy-on-write fork shares it with every child
    fd = make_listen(config.host, config.port, config.backlog)
    announce(config.model, fd)
    acceptor = Acceptor()
    while True:
        children.wait_for_room()  # syscall: sigwait (main)
        cfd = acceptor.accept(fd)  # syscall: accept
        pid = os.fork()  # syscall: clone
        if pid == 0:  # the child: serve this one client, then exit
            try:
                children.child_setup()
                handle_connection(cfd, config.delay)
            except BaseException:  # whatever happens, never return into the parent's loop
                os._exit(1)
            os._exit(0)  # syscall: exit
        if config.close_fd:
            cfd.close()  # syscall: close
        else:
            cfd.detach()  # as C that forgets close(cfd): the descriptor stays open


def process_cap(config: ServerConfig) -> Children:
    """The children this server may have: --max-children, and never past --cap-procs."""
    limit = config.cap_procs - 1
    what = f"process cap ({config.cap_procs} processes)"
    if config.max_children is not None and config.max_children < limit:
        limit, what = config.max_children, "--max-children"
    return Children(limit, what)
