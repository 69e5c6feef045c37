"""The server process, supervised: because it is real, it must never outlive svcviz.

It runs in its own session with PR_SET_PDEATHSIG, so it dies with svcviz; on stop every
process of its session is killed (adopted orphans included, see orphans.py), and the lab's
atexit hook does the same when svcviz exits without stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from svcviz import procstat
from svcviz.lab.errors import LabError
from svcviz.lab.orphans import reap_adopted
from svcviz.servers.config import ServerConfig
from svcviz.servers.limits import die_with_parent
from svcviz.servers.notice import NOTE, Notice, parse_notice
from svcviz.servers.ready import parse_ready

if TYPE_CHECKING:
    from svcviz.observe.snapshot import EventKind

START_TIMEOUT = 10.0
STOP_GRACE = 1.0
EXIT_POLL = 0.05


def session_pids(sid: int) -> list[int]:
    """Every process in session sid: the server and all it forked, adopted or not."""
    return [stat.pid for stat in procstat.all_stats() if stat.session == sid]


def kill_session(sid: int) -> None:
    for pid in session_pids(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _exited(proc: asyncio.subprocess.Process, timeout: float = math.inf, poll: float = 0.01) -> bool:
    """Whether proc exited within timeout.

    Not proc.wait(): asyncio only returns from it once the pipes close too, and a fork
    server's children (orphans included) hold copies of its stdout and stderr.
    """
    deadline = time.monotonic() + timeout
    while proc.returncode is None and time.monotonic() < deadline:
        await asyncio.sleep(poll)
    return proc.returncode is not None


class Supervisor:
    """One `svcviz serve` process at a time: started, signalled, watched, stopped.

    note(kind, text) is told what happens to it; hear(notice) each line it writes on
    stderr, as a Notice (a line in no notice format, a traceback say, as a NOTE).
    """

    def __init__(self, note: Callable[[EventKind, str], None], hear: Callable[[Notice], None]) -> None:
        self._note = note
        self._hear = hear
        self.pid: int | None = None
        self.status = "stopped"  # "running", "exited (status 0)", "killed", "stopped"
        # Every server started and not yet waited for: the orphan reaper leaves these to
        # asyncio, so the set is shared with it (mutated, never rebound).
        self.spawned: set[int] = set()
        self._proc: asyncio.subprocess.Process | None = None
        # The server between spawn and its ready line: stop() must kill it too.
        self._starting: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, config: ServerConfig, *, port_fallback: bool) -> ServerConfig:
        """Start the server; the config it runs with, its real port filled in.

        With port_fallback a busy port is no failure: any free port is taken, and reported.
        """
        try:
            return await self._spawn(config)
        except LabError as exc:
            if not (port_fallback and "already in use" in str(exc)):
                raise
        started = await self._spawn(config._replace(port=0))
        self._note("server", f"port {config.port} is busy: using {started.port}")
        return started

    async def stop(self) -> None:
        if self._starting is not None:  # its start then fails: the ready line never comes
            kill_session(self._starting.pid)
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.terminate()
            await _exited(proc, STOP_GRACE)
        kill_session(proc.pid)  # whatever the server left, adopted orphans included
        await _exited(proc, STOP_GRACE)
        deadline = time.monotonic() + STOP_GRACE
        while session_pids(proc.pid) and time.monotonic() < deadline:
            reap_adopted(self.spawned - {proc.pid})
            await asyncio.sleep(0.01)
        reap_adopted(self.spawned)
        # The pipes reach EOF once every holder is dead, so the server's last words are kept.
        await asyncio.wait(self._tasks, timeout=STOP_GRACE)
        self.spawned.discard(proc.pid)
        self.pid = None
        self.status = "stopped"

    def kill_all(self) -> None:
        """SIGKILL every process of the server's session, at once (atexit, a cap breached)."""
        for proc in (self._proc, self._starting):
            if proc is not None:
                kill_session(proc.pid)

    def kill_root(self) -> None:
        """SIGKILL the server's root only: its children are orphaned, and adopted by svcviz."""
        if self._proc is not None and self.running:
            self._proc.kill()
            self._note("server", f"killed the server (pid {self.pid}) with SIGKILL")

    def signal(self, sig: int) -> None:
        if self._proc is None or not self.running:
            raise LabError("the server is not running")
        self._proc.send_signal(sig)

    async def _spawn(self, config: ServerConfig) -> ServerConfig:
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "svcviz",
                "serve",
                *config.as_args(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=die_with_parent,  # SIGTERM when svcviz dies
            )
        except OSError as exc:  # EACCES: a user who may not run this Python; EAGAIN: no processes left
            raise LabError(f"cannot start the server ({sys.executable}): {exc.strerror or exc}") from None
        self.spawned.add(proc.pid)
        self._starting = proc
        stdout, stderr = proc.stdout, proc.stderr
        assert stdout is not None and stderr is not None  # both are PIPEs
        try:
            line = await asyncio.wait_for(stdout.readline(), START_TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        except asyncio.CancelledError:  # whoever waited for it is gone: nobody else would stop it
            kill_session(proc.pid)
            raise
        finally:
            self._starting = None
        ready = parse_ready(line.decode(errors="replace"))
        if ready is None:
            kill_session(proc.pid)
            await proc.wait()
            self.spawned.discard(proc.pid)
            said = (await stderr.read()).decode(errors="replace").strip().splitlines()
            reason = said[-1].removeprefix("svcviz serve: ") if said else "no ready line"
            raise LabError(f"{config.model} did not start: {reason}")
        self._proc = proc
        self.pid = proc.pid
        self.status = "running"
        self._note("server", f"started {config.model} on {ready.address} (pid {proc.pid})")
        self._tasks = [
            asyncio.create_task(self._read_stderr(stderr)),
            asyncio.create_task(self._drain(stdout)),
            asyncio.create_task(self._watch_exit(proc)),
        ]
        return config._replace(port=ready.port)

    async def _read_stderr(self, stderr: asyncio.StreamReader) -> None:
        while line := await stderr.readline():
            text = line.decode(errors="replace").strip()
            self._hear(parse_notice(text) or Notice(NOTE, text))

    @staticmethod
    async def _drain(stream: asyncio.StreamReader) -> None:
        while await stream.read(4096):
            pass

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        await _exited(proc, poll=EXIT_POLL)
        code = proc.returncode
        assert code is not None  # _exited with no timeout returns once the process has exited
        if self._proc is not proc:
            return  # stopped on purpose
        self.status = (
            "killed"
            if code == -signal.SIGKILL
            else (f"exited (status {code})" if code >= 0 else f"exited (signal {-code})")
        )
        self._note("server", f"server {proc.pid} {self.status}")
