"""A lesson as a checklist that checks itself: each step of a model's lesson names a kernel
fact (servers/registry.py); here each fact is judged from a LabUpdate, with the scenarios'
probes where one fits.

Steps tick in order and stay ticked: a step is judged only once the one before it holds,
and only on clients added since then (so `c then x` is this step's c, not an older one).
"""

from __future__ import annotations

from collections.abc import Callable

from svcviz.clients import ClientView
from svcviz.lab import LabUpdate
from svcviz.observe.snapshot import Connection
from svcviz.scenarios import probes
from svcviz.servers.registry import Lesson

# update, the clients added since the previous step ticked -> does the fact hold
Fact = Callable[[LabUpdate, list[ClientView]], bool]


def _conns(update: LabUpdate, state: str) -> list[Connection]:
    return [c for c in update.snapshot.connections if c.state == state]


def _conn_of(update: LabUpdate, view: ClientView) -> Connection | None:
    return next((c for c in update.snapshot.connections if c.client_port == view.local_port), None)


def _backlog(update: LabUpdate) -> int:
    return update.snapshot.listen[0].backlog if update.snapshot.listen else update.config.backlog


def queued(count: int) -> Fact:
    return lambda update, new: probes.queue_at_least(count)(update).holds and len(new) >= count


def accepted_by_server(update: LabUpdate, new: list[ClientView]) -> bool:
    return any(
        (c := _conn_of(update, v)) is not None and c.state == "accepted" and c.pid == update.server_pid for v in new
    )


def accepted(update: LabUpdate, new: list[ClientView]) -> bool:
    return any((c := _conn_of(update, v)) is not None and c.state == "accepted" for v in new)


def refused(update: LabUpdate, new: list[ClientView]) -> bool:
    return any(v.state == "refused" for v in new)


def accepted_after_refused(update: LabUpdate, new: list[ClientView]) -> bool:
    """A client added after a refusal is accepted: the server listens again."""
    refusals = [v.id for v in update.clients if v.state == "refused"]
    return bool(refusals) and any(
        v.id > min(refusals) and (c := _conn_of(update, v)) is not None and c.state == "accepted" for v in new
    )


def queue_overflows(update: LabUpdate, new: list[ClientView]) -> bool:
    """The queue holds backlog+1, and a newer client is still knocking (or was dropped)."""
    full = update.snapshot.queue_length >= _backlog(update) + 1
    knocking = any(v.state in ("connecting", "half-open", "timed_out") for v in new) or bool(
        _conns(update, "syn_sent") or _conns(update, "syn_recv")
    )
    return full and knocking


def next_accepted(update: LabUpdate, new: list[ClientView]) -> bool:
    """Earlier clients quit, and one that waited in the queue is accepted now."""
    quits = [v.id for v in update.clients if v.state == "quit"]
    return (
        any(
            v.open
            and (c := _conn_of(update, v)) is not None
            and c.state == "accepted"
            and v.id > min(quits, default=1 << 30)
            for v in update.clients
        )
        and len(quits) >= 2
    )


def zombie(update: LabUpdate, new: list[ClientView]) -> bool:
    return any(v.state == "quit" for v in new) and bool(
        [p for p in update.snapshot.zombies if p.ppid == update.server_pid]
    )


def no_zombies(update: LabUpdate, new: list[ClientView]) -> bool:
    return probes.zombies(0)(update).holds and probes.server_alive()(update).holds


def discarded(update: LabUpdate, new: list[ClientView]) -> bool:
    """SIGCHLD ignored, a client served and closed since: its child is gone, no zombie."""
    return (
        update.config.sigchld == "ignore"
        and any(v.state == "quit" and v.connect_ms is not None for v in new)
        and probes.zombies(0)(update).holds
        and len(probes.children(update)) == sum(1 for v in update.clients if v.open)
    )


def no_eof(update: LabUpdate, new: list[ClientView]) -> bool:
    """A half-close client was answered, and the parent still holds its connection: no EOF."""
    return not update.config.close_fd and any(
        v.kind == "half-close" and v.open and v.answered and probes.server_holds(v.id)(update).holds for v in new
    )


def emfile(update: LabUpdate, new: list[ClientView]) -> bool:
    limit = update.config.max_fds
    return limit is not None and probes.fd_table_full(limit)(update).holds


def orphans_hold_listener(update: LabUpdate, new: list[ClientView]) -> bool:
    return (
        not probes.server_alive()(update).holds
        and probes.listening()(update).holds
        and any((c := _conn_of(update, v)) is not None and c.state == "queued" for v in new)
    )


def ten_threads(update: LabUpdate, new: list[ClientView]) -> bool:
    return len(new) >= 10 and update.snapshot.thread_total >= 11


def thread_failed(update: LabUpdate, new: list[ClientView]) -> bool:
    return any(e.kind == "error" and "start a thread" in e.text for e in update.events)


def blast_through(update: LabUpdate, new: list[ClientView]) -> bool:
    return sum(1 for v in new if v.kind == "scripted" and v.answered and v.state == "quit") >= 90


def blast_ended(update: LabUpdate, new: list[ClientView]) -> bool:
    """A blast went by: its clients ended, answered or closed unanswered (or hang half-open,
    their final ACK dropped by a full queue: they never hear more), and some answered."""
    blast = [v for v in new if v.kind == "scripted"]
    return sum(1 for v in blast if not v.open or v.state == "half-open") >= 90 and any(v.answered for v in blast)


def blast_one_thread(update: LabUpdate, new: list[ClientView]) -> bool:
    return blast_through(update, new) and update.snapshot.thread_total == 1 and len(update.snapshot.processes) == 1


def pool_full(update: LabUpdate, new: list[ClientView]) -> bool:
    workers = update.config.workers
    conns = [_conn_of(update, v) for v in new]
    held = [c for c in conns if c is not None and c.state == "accepted"]
    waiting = [c for c in conns if c is not None and c.state == "queued"]
    return len(held) >= workers and len(waiting) >= 1


def pool_freed(update: LabUpdate, new: list[ClientView]) -> bool:
    open_now = [v for v in update.clients if v.open]
    held = [c for v in open_now if (c := _conn_of(update, v)) is not None and c.state == "accepted"]
    return any(v.state == "quit" for v in update.clients) and len(held) >= update.config.workers


def ten_in_one(update: LabUpdate, new: list[ClientView]) -> bool:
    held = [c for v in new if (c := _conn_of(update, v)) is not None and c.state == "accepted"]
    return len(held) >= 10 and update.snapshot.thread_total == 1 and len(update.snapshot.processes) == 1


FACTS: dict[str, Fact] = {
    "queued_2": queued(2),
    "queued_3": queued(3),
    "accepted": accepted,
    "accepted_by_server": accepted_by_server,
    "refused": refused,
    "accepted_after_refused": accepted_after_refused,
    "queue_overflows": queue_overflows,
    "next_accepted": next_accepted,
    "zombie": zombie,
    "no_zombies": no_zombies,
    "discarded": discarded,
    "no_eof": no_eof,
    "emfile": emfile,
    "orphans_hold_listener": orphans_hold_listener,
    "ten_threads": ten_threads,
    "thread_failed": thread_failed,
    "blast_through": blast_through,
    "blast_ended": blast_ended,
    "blast_one_thread": blast_one_thread,
    "pool_full": pool_full,
    "pool_freed": pool_freed,
    "ten_in_one": ten_in_one,
}


class Checklist:
    """One lesson's progress: how many steps are done, and the clients seen when the last
    one ticked (a step is judged on the clients added after)."""

    def __init__(self, lesson: Lesson) -> None:
        self.lesson = lesson
        self.done = 0
        self.seen: set[int] = set()

    def check(self, update: LabUpdate) -> bool:
        """Tick every step that holds now, in order; True if one ticked."""
        ticked = False
        while self.done < len(self.lesson.try_next):
            fact = FACTS[self.lesson.try_next[self.done].fact]
            new = [v for v in update.clients if v.id not in self.seen]
            if not fact(update, new):
                break
            self.done += 1
            self.seen = {v.id for v in update.clients}
            ticked = True
        return ticked
