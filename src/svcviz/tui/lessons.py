"""The lesson the dashboard shows: the model's own (servers/registry.py), or watch mode's."""

from __future__ import annotations

from svcviz.servers.registry import Lesson, Model, Step

WATCHING = Lesson(
    "watching a server svcviz did not start: its processes, threads, fds and queue, "
    "straight from the kernel. Clients work; model keys are off.",
    (Step("press c: a client connects; see which process and fd serve it", "accepted"),),
)


def lesson_for(model: Model | None) -> Lesson:
    """model None: a server svcviz did not start."""
    return WATCHING if model is None else model.lesson
