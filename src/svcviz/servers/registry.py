"""The nine models, in the lecture's order: each described here once, and asked, not named.

Everything that depends on what a model is (whether it forks, serves with threads, has a
pool of workers, takes the SIGCHLD controls; its key on the dashboard, its lesson) reads
these fields: no module outside this one compares a model's name. The long story of each
model is its module's docstring, next to its code.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import NamedTuple


class Step(NamedTuple):
    """One thing to try, and the kernel fact that shows it worked (a name the dashboard's
    checklist, svcviz.scenarios.checklist, knows how to judge)."""

    text: str
    fact: str


class Lesson(NamedTuple):
    shows: str  # what the model demonstrates, from the lecture
    try_next: tuple[Step, ...]  # what to do on the dashboard to see it, in order


LEAK_FD_LIMIT = 32  # the dashboard's --max-fds when the fork server leaks fds: EMFILE after a few clients
THREAD_MEMORY_MB = 200  # the dashboard's --max-memory for the thread model: a few tens of threads fit


class Model(NamedTuple):
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
    dashboard: tuple[tuple[str, object], ...] = ()  # settings the dashboard starts it with (lesson's climax)

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
            "A listening socket is only a stake in the ground. Reading it fails (ENOTCONN); the lecture's "
            "program then exits, this one calls pause() to keep its socket, so without accept() "
            "connections pile up in the kernel's queue.",
            (
                Step("press c three times: all three wait in the accept queue, none is served", "queued_3"),
                Step(
                    "press C: the queue fills to backlog+1, then clients knock (SYN_SENT) and drops count up",
                    "queue_overflows",
                ),
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
                Step(
                    "press c: the first client is accepted (idle until it sends: enter types a line)",
                    "accepted_by_server",
                ),
                Step("press c again: refused, there is no listening socket any more", "refused"),
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
                Step("press c, then c again while the first is open: the second is refused", "refused"),
                Step("press x, then c: accepted again, on a fresh listening socket", "accepted_after_refused"),
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
                Step("press c three times: the 1st is accepted, the 2nd and 3rd wait in the accept queue", "queued_2"),
                Step(
                    "press x (the newest closes), then home and x (the first closes): the next is accepted",
                    "next_accepted",
                ),
                Step("press C twice: past backlog+1 clients sit in SYN_SENT and drops count up", "queue_overflows"),
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
            "The parent accept()s, then fork()s: the child inherits the connection's fd and serves it. "
            "A child that exits stays a zombie until its parent waitpid()s it; signal(SIGCHLD, SIG_IGN) "
            "makes the kernel discard them.",
            (
                Step("press c then x: the child exits and stays a zombie", "zombie"),
                Step("press w: the parent waits, the zombies are reaped", "no_zombies"),
                Step("press s (SIGCHLD: ignore), then c and x: the kernel discards the child, no zombie", "discarded"),
                Step(
                    f"press f (the parent keeps each fd, --max-fds {LEAK_FD_LIMIT}), then h: the client sends, "
                    "shuts down writing, and waits for an EOF that never comes",
                    "no_eof",
                ),
                Step("press C three times: the parent's fd table fills, accept() fails with EMFILE", "emfile"),
                Step(
                    "press k: the server dies; its children live on, adopted by svcviz, still holding the "
                    "listening socket: a new c waits in the queue forever",
                    "orphans_hold_listener",
                ),
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
            "Unbounded, they run the server out of memory (482 connections in class; here "
            f"--max-memory {THREAD_MEMORY_MB} MB).",
            (
                Step("press C: ten threads appear under the one process", "ten_threads"),
                Step(
                    "press C until it fails (two or three times): each thread's stack is memory; thread creation fails",
                    "thread_failed",
                ),
                Step(
                    "press X, then b: a blast of 100; threads come and go, and past the limit clients are "
                    "closed unanswered",
                    "blast_ended",
                ),
            ),
        ),
        dashboard=(("max_memory", THREAD_MEMORY_MB),),
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
                Step("press c five times: four are served, the fifth waits in the accept queue", "pool_full"),
                Step(
                    "press home then x (a served client closes): the waiting one is accepted by the freed worker",
                    "pool_freed",
                ),
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
            "N threads accept() on one socket; client N+1 waits in the backlog. An idle client holds its "
            "thread: four idle clients stop everyone else.",
            (
                Step("press c five times: four threads serve, the fifth client waits in the accept queue", "pool_full"),
                Step(
                    "press X (the idle four hold every thread), then b: 100 clients go through four threads",
                    "blast_ended",
                ),
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
            "One process, one thread, non-blocking fds and epoll: it serves the clients in turn, as each "
            "becomes ready, and never blocks on any one of them.",
            (
                Step("press C: ten clients held by one thread, ten fds in one table", "ten_in_one"),
                Step("press b: a blast of 100, still one process and one thread", "blast_one_thread"),
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
