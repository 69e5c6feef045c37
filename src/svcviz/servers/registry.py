"""The nine models, in the lecture's order: name, the lecture program, the one idea."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Model:
    name: str
    lecture: str
    idea: str
    processes: str  # what the process tree looks like, for the dashboard and the README

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"svcviz.servers.{self.name.replace('-', '_')}")


MODELS = (
    Model(
        "listen-only",
        "serviceserver00",
        "reading the listening socket fails (ENOTCONN); clients fill the backlog, none is served",
        "1 process",
    ),
    Model(
        "accept-once",
        "serviceserver01",
        "one client served; the listening socket is closed, later clients are refused",
        "1 process",
    ),
    Model(
        "relisten",
        "serviceserver02",
        "a new listening socket per connection; clients arriving mid-service are refused",
        "1 process",
    ),
    Model(
        "serial",
        "serviceserver03",
        "one client at a time; the rest wait in the backlog, served in arrival order",
        "1 process",
    ),
    Model(
        "fork",
        "forked server",
        "a process per client; zombies unless SIGCHLD is handled; a leaked fd means no EOF and EMFILE",
        "1 + 1 per client",
    ),
    Model(
        "thread",
        "serviceserver07",
        "a thread per client in one process; thread creation fails as memory runs out",
        "1, with 1 + 1 thread per client",
    ),
    Model(
        "prefork", "prefork pool", "N processes share one listening socket; client N+1 waits in the backlog", "1 + N"
    ),
    Model(
        "threadpool",
        "bounded threads",
        "N threads share one listening socket; client N+1 waits in the backlog",
        "1, with 1 + N threads",
    ),
    Model(
        "event", "event-driven", "one process, one thread, many clients (epoll, non-blocking fds)", "1, with 1 thread"
    ),
)

BY_NAME = {model.name: model for model in MODELS}
NAMES = tuple(BY_NAME)
