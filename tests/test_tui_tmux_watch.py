"""`svcviz watch` in a real terminal at 160x45 on a real prefork server (gunicorn sync, 4
workers): every worker's row on the screen, with its title, and the architecture named.
A private tmux socket (`tmux -L`), killed however the test ends."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import wait_until
from realservers import free_port, running
from test_real_servers import WSGI_APP

GUNICORN = Path(sys.executable).parent / "gunicorn"
pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
    pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed (the [test] extra has it)"),
]


def tmux(socket_name: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket_name, *args], capture_output=True, text=True, timeout=10).stdout


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return sorted(map(int, f.read().split()))


def argv0(pid: int) -> str:
    """The start of the process's title as the kernel has it (setproctitle's, or its argv)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")[0].decode()[:20]


def test_watch_shows_every_gunicorn_worker_at_160x45(tmp_path):
    (tmp_path / "app.py").write_text(WSGI_APP)
    port = free_port()
    argv = [str(GUNICORN), "-w", "4", "-b", f"127.0.0.1:{port}", "app:app"]
    with running(argv, port, tmp_path) as master:
        assert wait_until(lambda: len(children(master.pid)) == 4, timeout=20), "gunicorn never had 4 workers"
        workers = children(master.pid)
        name = f"svcviz-watch-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # the private socket's name too
        command = f"env -u COLUMNS -u LINES {sys.executable} -m svcviz watch --port {port}"
        tmux(name, "new-session", "-d", "-s", name, "-x", "160", "-y", "45", command)
        try:

            def screen() -> str:
                return tmux(name, "capture-pane", "-p", "-t", name)

            def every_worker() -> bool:
                text = screen()
                return all(re.search(rf"└ {pid} {re.escape(argv0(pid))}", text) for pid in workers)

            assert wait_until(every_worker, timeout=20, interval=0.2), screen()
            text = screen()
            assert re.search(rf"^│{master.pid} {re.escape(argv0(master.pid))}", text, re.M)
            assert "architecture: prefork" in text
            said = "clients speak: http (the server is gunicorn)"
            assert wait_until(lambda: said in screen(), timeout=10, interval=0.2), screen()
        finally:
            tmux(name, "kill-server")
