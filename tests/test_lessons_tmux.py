"""The nine lessons followed as a student follows them, in a real terminal (tmux on a
private socket), in one session: in order, then in a shuffled order. Each hint's keys are
pressed literally; each step must be ticked on screen (the lesson box's `N/M done`), and
most steps' promised facts are then read from the kernel with ss and ps (KERNEL), not from
svcviz: the screen's tick is svcviz's own judgement, these are the kernel's word."""

from __future__ import annotations

import functools
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from conftest import wait_until
from kernel import children, fd_count, listen_queue, ps_threads, tcp_states, zombies
from svcviz.servers.registry import LEAK_FD_LIMIT, MODELS
from test_tui_tmux import Terminal, tmux

COMMAND = f"env -u COLUMNS -u LINES {sys.executable} -m svcviz --port 0"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

# Each model's steps: the keys its hint says to press, one list per step.
KEYS = {
    "listen-only": [["c", "c", "c"], ["C"]],
    "accept-once": [["c"], ["c"]],
    "relisten": [["c", "c"], ["x", "c"]],
    "serial": [["c", "c", "c"], ["x", "Home", "x"], ["C", "C"]],
    "fork": [["c", "x"], ["w"], ["s", "c", "x"], ["f", "h"], ["C", "C", "C"], ["k", "c"]],
    "thread": [["C"], ["C", "C", "C"], ["X", "b"]],
    "prefork": [["c", "c", "c", "c", "c"], ["Home", "x"]],
    "threadpool": [["c", "c", "c", "c", "c"], ["X", "b"]],
    "event": [["C"], ["b"]],
}


def opened(command: str) -> Terminal:
    """A terminal whose pane stays after the app ends, so a failure can show how it ended
    (exit status, and the traceback Textual prints on the normal screen)."""
    term = Terminal(command)
    tmux(term.name, "set-option", "-t", term.name, "remain-on-exit", "on")
    return term


def seen(term: Terminal) -> str:
    """What the test saw: the screen, and whether the app still runs (or how it ended)."""
    dead = tmux(term.name, "display-message", "-p", "-t", term.name, "#{pane_dead} #{pane_dead_status}").split()
    if dead[:1] == ["0"]:
        return f"--- app running; the screen:\n{term.screen()}"
    # ended: Textual printed any traceback on the normal screen, maybe longer than the pane
    history = tmux(term.name, "capture-pane", "-p", "-S", "-300", "-t", term.name)
    return f"--- app ended, status {dead[1:] or '?'}; the pane and its history:\n{history}"


def gone(pid: int) -> bool:
    """ps -p: no such process, or only its zombie."""
    out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return not out.strip() or out.strip().startswith("Z")


def queue(port: int) -> int | None:
    """ss -ltn's Recv-Q on the port: the accept queue; None when nothing listens."""
    said = listen_queue(port)
    return said[0] if said else None


# What the kernel says once a step is ticked, read with ss and ps (not from svcviz):
# (model, step) -> look(port, server pid) -> does it hold.
KERNEL: dict[tuple[str, int], Callable[[int, int], bool]] = {
    ("listen-only", 1): lambda port, pid: listen_queue(port) == (3, 8),
    ("listen-only", 2): lambda port, pid: listen_queue(port) == (9, 8),  # backlog+1: full
    ("accept-once", 1): lambda port, pid: queue(port) is None and "ESTAB" in tcp_states(port),
    ("accept-once", 2): lambda port, pid: queue(port) is None,
    ("relisten", 1): lambda port, pid: queue(port) is None and "ESTAB" in tcp_states(port),  # serving: no listener
    ("relisten", 2): lambda port, pid: queue(port) is None and "ESTAB" in tcp_states(port),
    ("serial", 1): lambda port, pid: listen_queue(port) == (2, 8),
    ("serial", 3): lambda port, pid: queue(port) == 9,
    ("fork", 1): lambda port, pid: zombies(pid) >= 1,
    ("fork", 2): lambda port, pid: zombies(pid) == 0,
    ("fork", 3): lambda port, pid: zombies(pid) == 0,
    ("fork", 4): lambda port, pid: "CLOSE-WAIT" in tcp_states(port),  # the client's FIN, never our own
    ("fork", 5): lambda port, pid: fd_count(pid) == LEAK_FD_LIMIT,
    ("fork", 6): lambda port, pid: gone(pid) and (queue(port) or 0) >= 1,  # orphans listen; c waits
    ("thread", 1): lambda port, pid: ps_threads(pid) >= 11,
    ("prefork", 1): lambda port, pid: queue(port) == 1 and len(children(pid)) == 4,
    ("prefork", 2): lambda port, pid: queue(port) == 0 and len(children(pid)) == 4,
    ("threadpool", 1): lambda port, pid: queue(port) == 1 and ps_threads(pid) == 1 + 4,
    ("event", 1): lambda port, pid: ps_threads(pid) == 1 and tcp_states(port).count("ESTAB") >= 10,
    ("event", 2): lambda port, pid: ps_threads(pid) == 1 and not children(pid),
}


def kernel_view(port: int, pid: int) -> str:
    return (
        f"ss -ltn: {listen_queue(port)}; ss -tan: {tcp_states(port)}; ps --ppid {pid}: {children(pid)}; "
        f"ps -L: {ps_threads(pid)} threads"
    )


def server_of(term: Terminal) -> tuple[int, int]:
    """(port, pid) off the header."""
    match = term.matches(r"127\.0\.0\.1:(\d+) +pid (\d+) ")
    assert match, seen(term)
    return int(match.group(1)), int(match.group(2))


def walk(term: Terminal, name: str) -> None:
    model = next(m for m in MODELS if m.name == name)
    term.press(model.key)
    total = len(model.lesson.try_next)
    assert term.shows(f"{name}: 0/{total} done", timeout=20), seen(term)
    for number, keys in enumerate(KEYS[name], start=1):
        for key in keys:  # a quick student: a third of a second between keys
            term.press(key)
            time.sleep(0.2)
        assert term.shows(f"{name}: {number}/{total} done", timeout=20), f"{name} step {number}:\n{seen(term)}"
        look = KERNEL.get((name, number))
        if look is not None:
            port, pid = server_of(term)
            holds = functools.partial(look, port, pid)
            assert wait_until(holds, timeout=5), f"{name} step {number}: {kernel_view(port, pid)}"
    assert term.screen().count("✓") >= min(total, 1), seen(term)


@pytest.mark.timeout(240)
def test_all_nine_lessons_in_order_then_shuffled():
    term = opened(COMMAND)
    try:
        assert term.shows("lesson", timeout=15), seen(term)
        order = [m.name for m in MODELS]
        shuffled = order[:]
        random.Random(18).shuffle(shuffled)
        if shuffled[0] == order[-1]:
            shuffled.reverse()
        for name in order + shuffled:
            walk(term, name)
        term.press("q")
        assert wait_until(lambda: not term.running(), timeout=10)
    finally:
        term.close()


def test_80x24_keeps_the_steps_and_the_footer_keys():
    term = opened(COMMAND)
    try:
        tmux(term.name, "resize-window", "-t", term.name, "-x", "80", "-y", "24")
        assert term.shows("lesson", timeout=15), seen(term)
        for name in ("fork", "serial"):
            walk(term, name)
            screen = term.screen()
            assert re.search(r"[→✓] ", screen), seen(term)
        footer = term.screen().rstrip().splitlines()[-1]
        for key in ("c", "x", "k", "l", "q"):
            assert re.search(rf"\b{key}\b", footer), footer
    finally:
        term.close()
