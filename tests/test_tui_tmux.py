"""The dashboard in a real terminal: `svcviz --port 0` under tmux, read off the screen.

Each test runs its own tmux server on a private socket (`tmux -L NAME`), never the
default one where other people's sessions live, and kills that server in finally. The
server daemonizes; pytest is a subreaper, so it is adopted here and the conftest guard
would see it if it were left. Each test also checks the svcviz server's session itself.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from conftest import wait_until
from kernel import listen_queue
from svcviz.procstat import all_stats, read_stat

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def tmux(socket_name: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket_name, *args], capture_output=True, text=True, timeout=10).stdout


def living_in_session(sid: int) -> list[int]:
    """Processes of session sid that are not zombies (an orphan zombie waits for init)."""
    return [stat.pid for stat in all_stats() if stat.session == sid and not stat.zombie]


class Terminal:
    def __init__(self, command: str, size: tuple[int, int] = (120, 40)) -> None:
        self.name = f"svcviz-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # also the private socket's name
        tmux(self.name, "new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]), command)
        self.pid = int(tmux(self.name, "list-panes", "-t", self.name, "-F", "#{pane_pid}").strip())

    def screen(self) -> str:
        return tmux(self.name, "capture-pane", "-p", "-t", self.name)

    def press(self, *keys: str) -> None:
        for key in keys:
            tmux(self.name, "send-keys", "-t", self.name, key)
            time.sleep(0.15)

    def shows(self, text: str, timeout: float = 8.0) -> bool:
        return bool(wait_until(lambda: text in self.screen(), timeout=timeout, interval=0.1))

    def matches(self, pattern: str, timeout: float = 8.0) -> re.Match | None:
        return wait_until(lambda: re.search(pattern, self.screen()), timeout=timeout, interval=0.1)

    def running(self) -> bool:
        stat = read_stat(self.pid)
        return stat is not None and not stat.zombie

    def close(self) -> None:
        tmux(self.name, "kill-server")


@pytest.fixture
def terminal():
    opened: list[Terminal] = []

    def open_(*args: str, size: tuple[int, int] = (120, 40)) -> Terminal:
        # Without COLUMNS/LINES (pytest may set them): the app must size itself from the tty.
        term = Terminal(
            " ".join(["env", "-u", "COLUMNS", "-u", "LINES", sys.executable, "-m", "svcviz", "--port", "0", *args]),
            size,
        )
        opened.append(term)
        return term

    try:
        yield open_
    finally:
        for term in opened:
            term.close()


def server_of(term: Terminal, model: str) -> tuple[int, int]:
    """(server pid, port) read off the header once it shows model."""
    match = term.matches(rf" {model} +127\.0\.0\.1:(\d+) +pid (\d+) +running")
    assert match, term.screen()
    return int(match.group(2)), int(match.group(1))


def test_a_session_in_a_real_terminal(terminal):
    term = terminal()
    pid, port = server_of(term, "serial")
    assert term.shows("processes and their fds")  # the picture, on at this size
    term.press("g")  # the panels instead
    assert term.shows("accept queue: 0/8")
    term.press("c", "c", "c")
    assert term.shows("accept queue: 2/8"), term.screen()
    assert listen_queue(port) == (2, 8)
    term.press("5")
    fork_pid, port = server_of(term, "fork")
    assert not living_in_session(pid)
    term.press("c")
    assert term.matches(r"└ \d+ \S"), term.screen()
    term.press("x")
    assert term.shows("zombie <defunct>"), term.screen()  # the process row, not the event log
    term.press("w")
    assert wait_until(lambda: "zombie <defunct>" not in term.screen(), timeout=5), term.screen()
    term.press("s")
    assert term.shows("SIGCHLD: ignore")
    term.press("c")
    assert term.matches(r"└ \d+ \S"), term.screen()
    term.press("x")
    assert wait_until(lambda: not re.search(r"└ \d+", term.screen()), timeout=5), term.screen()
    assert "zombie <defunct>" not in term.screen()
    term.press("q")
    assert wait_until(lambda: not term.running(), timeout=8)
    assert wait_until(lambda: not living_in_session(fork_pid), timeout=3)
    assert listen_queue(port) is None


def test_the_picture_at_160x45_joins_every_client_to_the_leaky_parent(terminal):
    term = terminal("--model", "fork", "--leak-fd", size=(160, 45))
    pid, _ = server_of(term, "fork")
    term.press("c", "c", "c")
    assert term.matches(rf"{pid} parent"), term.screen()
    # the parent's fd table: a row for each client's connection, each with its line
    for client in (1, 2, 3):
        assert term.matches(rf"┤ \d+ ← #{client} "), term.screen()

    # the parent's 3, the children's 1, 2, 3: once the sample with the third child is drawn
    def joined() -> int:
        return sum(1 for line in term.screen().splitlines() if "← #" in line)

    assert wait_until(lambda: joined() == 3 + (1 + 2 + 3), timeout=10), term.screen()
    term.press("q")
    assert wait_until(lambda: not term.running(), timeout=8)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_signals_to_svcviz_leave_nothing(terminal, sig):
    term = terminal("--model", "fork")
    pid, port = server_of(term, "fork")
    term.press("g", "c", "c")  # the panels, not the picture
    assert term.matches(r"(└ \d+ \S.*\n.*){2}"), term.screen()
    os.kill(term.pid, sig)
    assert wait_until(lambda: not term.running(), timeout=8)
    assert wait_until(lambda: not living_in_session(pid), timeout=5), living_in_session(pid)
    assert listen_queue(port) is None


def test_the_code_panel_in_a_real_terminal(terminal):
    """v: the serial model's accept line carries the server's pid; with a client, the read does."""
    term = terminal()
    pid, _ = server_of(term, "serial")
    term.press("g", "v")  # the panels, not the picture (on at 120x40): the code beside the server panel
    assert term.matches(rf"cfd = acceptor\.accept\(fd\).*<- {pid}"), term.screen()
    term.press("c")
    assert term.matches(rf"conn\.recv\(65536\).*<- {pid}"), term.screen()
    assert not re.search(rf"acceptor\.accept\(fd\).*<- {pid}", term.screen()), term.screen()
    term.press("q")
    assert wait_until(lambda: not term.running(), timeout=8)
    assert wait_until(lambda: not living_in_session(pid), timeout=3)
