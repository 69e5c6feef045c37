"""What each model demonstrates (from the lecture notes) and what to try next on screen."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    shows: str
    try_next: tuple[str, ...]


LESSONS = {
    "listen-only": Lesson(
        "A listening socket is only a stake in the ground. Reading it fails "
        "(ENOTCONN); without accept() connections pile up in the kernel's queue.",
        (
            "press c three times: all three wait in the accept queue, none is served",
            "press C: the queue fills to backlog+1, then clients knock (SYN_SENT) and drops count up",
        ),
    ),
    "accept-once": Lesson(
        "accept() makes a new fd for one connection; closing the listening "
        "socket afterwards means nobody else can connect.",
        ("press c: the first client is served", "press c again: refused, there is no listening socket any more"),
    ),
    "relisten": Lesson(
        "A new listening socket per connection. While one client is served "
        "there is no listener, so the kernel tells newcomers to go away.",
        (
            "press c, then c again while the first is open: the second is refused",
            "press x, then c: served again, on a fresh listening socket",
        ),
    ),
    "serial": Lesson(
        "One listening socket, one client at a time. The others wait their "
        "turn in the kernel's accept queue; what they send waits unread.",
        (
            "press c three times: the 2nd and 3rd wait in the accept queue",
            "press x: the newest closes; select the first with up/down and x: the next is accepted",
            "press C twice: past backlog+1 clients sit in SYN_SENT and drops count up",
        ),
    ),
    "fork": Lesson(
        "A process per connection: served in parallel, but a child that exits stays a "
        "zombie until its parent waitpid()s it; signal(SIGCHLD, SIG_IGN) stops later ones.",
        (
            "press c then x: the child exits and stays a zombie",
            "press w: the zombies are reaped; press s: SIGCHLD to ignore, then c x: no new zombie",
            "press f: the parent keeps each fd (no close): x no longer ends the connection",
            "press k: the server dies, its children are adopted by svcviz and reaped",
        ),
    ),
    "thread": Lesson(
        "A thread per connection in one process; threads share the fd table "
        "and memory. Unbounded, they run the server out of memory (482 connections in class).",
        ("press C: ten threads appear under the one process", "press b: a blast of 100; watch threads come and go"),
    ),
    "prefork": Lesson(
        "N processes made up front all accept() on one shared listening socket; "
        "the internet no longer decides how many processes run.",
        (
            "press c five times: four are served, the fifth waits in the accept queue",
            "press x on a served client: the waiting one is accepted by the freed worker",
        ),
    ),
    "threadpool": Lesson(
        "N threads accept() on one socket; client N+1 waits in the backlog.",
        (
            "press c five times: four threads serve, the fifth client waits in the accept queue",
            "press b: a blast of 100 goes through four threads",
        ),
    ),
    "event": Lesson(
        "One process, one thread, non-blocking fds and epoll; every client is "
        "served at once without a process or thread each.",
        (
            "press C: ten clients served by one thread, ten fds in one table",
            "press b: a blast of 100, still one process and one thread",
        ),
    ),
    "watch": Lesson(
        "watching a server svcviz did not start: its processes, threads, fds and queue, "
        "straight from the kernel. Clients work; model keys are off.",
        ("press c: a client connects; see which process and fd serve it",),
    ),
}


def lesson_for(model: str) -> Lesson:
    return LESSONS.get(model, LESSONS["watch"])
