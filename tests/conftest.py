"""Shared fixtures: real servers, and a guard that fails any test that leaves a process behind.

pytest makes itself a child subreaper, so a process a test orphans is reparented here
instead of to init, and the guard sees it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil
import pytest

from svcviz.servers.ready import Ready, parse_ready

PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# The comm of a server the tests start with sys.executable: python or python3, as pytest was.
PYTHON_COMM = os.path.basename(sys.executable)[:15]

# A command's prefix that runs it as user nobody (setpriv drops root and every capability).
AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
NOBODY_CANNOT_RUN = "needs root and setpriv, and a checkout user nobody can read (a mktemp -d clone is mode 700)"


def nobody_can_run_svcviz() -> bool:
    """Whether this checkout's svcviz can be run as user nobody: as root, with setpriv, in
    a checkout nobody may read."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    return subprocess.run([*AS_NOBODY, sys.executable, "-c", "import svcviz"], capture_output=True).returncode == 0


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll predicate until it returns something truthy; that value, or the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@dataclass
class Server:
    proc: subprocess.Popen
    ready: Ready  # what its ready line said

    @property
    def port(self) -> int:
        return self.ready.port

    @property
    def pid(self) -> int:
        return self.ready.pid

    def stderr_text(self, timeout: float = 2.0) -> str:
        """Everything the server said on stderr, once it has exited."""
        self.proc.wait(timeout)
        return self.proc.stderr.read()


def start_servers(count: int, model: str, *args: str) -> list[Server]:
    """count `svcviz serve MODEL --port 0 ARGS`, running, with their ports read off the
    ready lines; started at once (a test that needs many waits for Python's
    start-up once, not count times); all stopped if one does not start."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "svcviz", "serve", model, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    servers = []
    for proc in procs:
        line = proc.stdout.readline()
        ready = parse_ready(line)
        if ready is None:
            for other in procs:
                other.kill()
                other.wait()
            raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read()!r}")
        servers.append(Server(proc, ready))
    return servers


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@pytest.fixture
def serve_many():
    """serve_many(count, model, *args) -> [Server]; every server is stopped when the test ends."""
    servers: list[Server] = []

    def start(count: int, model: str, *args: str) -> list[Server]:
        started = start_servers(count, model, *args)
        servers.extend(started)
        return started

    yield start
    for server in servers:
        stop_process(server.proc)
        for stream in (server.proc.stdout, server.proc.stderr):
            stream.close()


@pytest.fixture
def serve(serve_many):
    """serve(model, *args) -> Server; every server is stopped when the test ends."""
    return lambda model, *args: serve_many(1, model, *args)[0]


def reap_adopted_zombies() -> None:
    """waitpid() the orphans that died after pytest adopted them, as init would."""
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            pass


def _leftovers() -> list[psutil.Process]:
    reap_adopted_zombies()
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """Fail a test that leaves any process of its own running (orphans included)."""
    yield
    if wait_until(lambda: not _leftovers(), timeout=3.0):
        return
    names = []
    for process in _leftovers():
        try:
            names.append(f"{process.pid} {' '.join(process.cmdline()[:6])}")
            process.kill()
        except psutil.Error:
            pass
    wait_until(lambda: not _leftovers(), timeout=3.0)
    pytest.fail(f"the test left processes running: {names}")
