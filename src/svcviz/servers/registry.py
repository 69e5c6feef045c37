"""The nine models, in the lecture's order: each described here once, and asked, not named.

Everything that depends on what a model is (whether it forks, serves with threads, has a
pool of workers, takes the SIGCHLD controls; its key on the dashboard, its lesson) reads
these fields: no module outside this one compares a model's name. The long story of each
model is its module's docstring, next to its code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Lesson:
    shows: str  # what the model demonstrates, from the lecture
    try_next: tuple[str, ...]  # what to do on the dashboard to see it


@dataclass(frozen=True)
class Model:
    name: str
    key: str  # the dashboard's key that switches to it
    lecture: str  # the lecture's program
    idea: str  # the one idea, in a line
    processes: str  # what the process tree looks like, for the dashboard and the README
    lesson: Lesson
    serves: bool = False  # keeps serving client after client (the bench measures it)
    forks: bool = False  # a process per client
    threaded: bool = False  # its clients are served by threads of one process
    has_pool: bool = False  # --workers: N processes or threads made up front
    sigchld_controls: bool = False  # SIGUSR1/SIGUSR2 switch its SIGCHLD handling; any other model dies of them

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"svcviz.servers.{self.name.replace('-', '_')}")


MODELS = (
    Model(
        "listen-only",
        key="1",
        lecture="serviceserver00",
        idea="reading the listening socket fails (ENOTCONN); clients fill the backlog, none is served",
        processes="1 process",
        lesson=Lesson(
            "A listening socket is only a stake in the ground. Reading it fails (ENOTCONN); without "
            "accept() connections pile up in the kernel's queue.",
            (
                "press c three times: all three wait in the accept queue, none is served",
                "press C: the queue fills to backlog+1, then clients knock (SYN_SENT) and drops count up",
            ),
        ),
    ),
    Model(
        "accept-once",
        key="2",
        lecture="serviceserver01",
        idea="one client served; the listening socket is closed, later clients are refused",
        processes="1 process",
        lesson=Lesson(
            "accept() makes a new fd for one connection; closing the listening socket afterwards "
            "means nobody else can connect.",
            (
                "press c: the first client is served",
                "press c again: refused, there is no listening socket any more",
            ),
        ),
    ),
    Model(
        "relisten",
        key="3",
        lecture="serviceserver02",
        idea="a new listening socket per connection; clients arriving mid-service are refused",
        processes="1 process",
        lesson=Lesson(
            "A new listening socket per connection. While one client is served there is no listener, "
            "so the kernel tells newcomers to go away.",
            (
                "press c, then c again while the first is open: the second is refused",
                "press x, then c: served again, on a fresh listening socket",
            ),
        ),
    ),
    Model(
        "serial",
        key="4",
        lecture="serviceserver03",
        idea="one client at a time; the rest wait in the backlog, served in arrival order",
        processes="1 process",
        serves=True,
        lesson=Lesson(
            "One listening socket, one client at a time. The others wait their turn in the kernel's "
            "accept queue; what they send waits unread.",
            (
                "press c three times: the 2nd and 3rd wait in the accept queue",
                "press x: the newest closes; select the first with up/down and x: the next is accepted",
                "press C twice: past backlog+1 clients sit in SYN_SENT and drops count up",
            ),
        ),
    ),
    Model(
        "fork",
        key="5",
        lecture="forked server",
        idea="a process per client; zombies unless SIGCHLD is handled; a leaked fd means no EOF and EMFILE",
        processes="1 + 1 per client",
        serves=True,
        forks=True,
        sigchld_controls=True,
        lesson=Lesson(
            "A process per connection: served in parallel, but a child that exits stays a zombie "
            "until its parent waitpid()s it; signal(SIGCHLD, SIG_IGN) stops later ones.",
            (
                "press c then x: the child exits and stays a zombie",
                "press w: the zombies are reaped; press s: SIGCHLD to ignore, then c x: no new zombie",
                "press f: the parent keeps each fd (no close): x no longer ends the connection",
                "press k: the server dies, its children are adopted by svcviz and reaped",
            ),
        ),
    ),
    Model(
        "thread",
        key="6",
        lecture="serviceserver07",
        idea="a thread per client in one process; thread creation fails as memory runs out",
        processes="1, with 1 + 1 thread per client",
        serves=True,
        threaded=True,
        lesson=Lesson(
            "A thread per connection in one process; threads share the fd table and memory. "
            "Unbounded, they run the server out of memory (482 connections in class).",
            (
                "press C: ten threads appear under the one process",
                "press b: a blast of 100; watch threads come and go",
            ),
        ),
    ),
    Model(
        "prefork",
        key="7",
        lecture="prefork pool",
        idea="N processes share one listening socket; client N+1 waits in the backlog",
        processes="1 + N",
        serves=True,
        has_pool=True,
        lesson=Lesson(
            "N processes made up front all accept() on one shared listening socket; the internet no "
            "longer decides how many processes run.",
            (
                "press c five times: four are served, the fifth waits in the accept queue",
                "press x on a served client: the waiting one is accepted by the freed worker",
            ),
        ),
    ),
    Model(
        "threadpool",
        key="8",
        lecture="bounded threads",
        idea="N threads share one listening socket; client N+1 waits in the backlog",
        processes="1, with 1 + N threads",
        serves=True,
        threaded=True,
        has_pool=True,
        lesson=Lesson(
            "N threads accept() on one socket; client N+1 waits in the backlog.",
            (
                "press c five times: four threads serve, the fifth client waits in the accept queue",
                "press b: a blast of 100 goes through four threads",
            ),
        ),
    ),
    Model(
        "event",
        key="9",
        lecture="event-driven",
        idea="one process, one thread, many clients (epoll, non-blocking fds)",
        processes="1, with 1 thread",
        serves=True,
        lesson=Lesson(
            "One process, one thread, non-blocking fds and epoll; every client is served at once "
            "without a process or thread each.",
            (
                "press C: ten clients served by one thread, ten fds in one table",
                "press b: a blast of 100, still one process and one thread",
            ),
        ),
    ),
)

BY_NAME = {model.name: model for model in MODELS}
NAMES = tuple(BY_NAME)
SIGCHLD_MODEL = next(model for model in MODELS if model.sigchld_controls)


def model_of(name: str) -> Model | None:
    """The model of that name; None for a server svcviz did not start (watch mode)."""
    return BY_NAME.get(name)
