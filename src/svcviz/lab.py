"""The lab: a server model, its clients and the observer, run together, safely.

The dashboard and the scenarios are both written on this alone::

    lab = Lab(ServerConfig("fork"))
    await lab.start()
    await lab.add_clients(3)
    async for update in lab.updates():   # LabUpdate: snapshot, events, clients, ...
        ...
    await lab.stop()

Safety, because the server is real: it runs in its own session with PR_SET_PDEATHSIG, so
it dies with svcviz; svcviz is a child subreaper, so what the server orphans is adopted
here and reaped; on stop every process of the server's session is killed, and an atexit
hook does the same when svcviz exits without stopping.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import math
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from svcviz.clients import ClientView, Fleet, FleetFull
from svcviz.observe.events import diff
from svcviz.observe.observer import ObserveError, Observer
from svcviz.observe.snapshot import Event, Snapshot
from svcviz.servers.config import DEFAULT_PORT, SIGCHLD_MODES, ServerConfig, ServerError

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
READY = re.compile(r"svcviz: \S+ listening on (\S+):(\d+) \(pid (\d+)\)")
START_TIMEOUT = 10.0
STOP_GRACE = 1.0
EXIT_POLL = 0.05
MAX_PENDING_EVENTS = 1000


class LabError(Exception):
    """Something the user can fix (a busy port, a bad option): one line."""


@dataclass(frozen=True)
class LabUpdate:
    snapshot: Snapshot
    events: tuple[Event, ...]  # new since the previous update
    clients: tuple[ClientView, ...]
    config: ServerConfig
    server_pid: int | None
    status: str  # "running", "exited (status 0)", "killed", "stopped", "watching"
    cap_hit: str | None


def _prctl(option: int, value: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _die_with_parent() -> None:
    """In the server, before exec: SIGTERM it when svcviz (the thread that started it) dies."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def session_pids(sid: int) -> list[int]:
    """Every process in session sid: the server and all it forked, adopted or not."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: session id
            pids.append(int(name))
    return pids


def kill_session(sid: int) -> None:
    for pid in session_pids(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def reap_adopted(spawned: set[int]) -> int:
    """waitpid() the zombies svcviz adopted as subreaper, never one it waits on itself."""
    me = os.getpid()
    reaped = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in spawned:
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            try:
                os.waitpid(int(name), os.WNOHANG)
                reaped += 1
            except ChildProcessError:
                pass
    return reaped


async def _exited(proc: asyncio.subprocess.Process, timeout: float = math.inf, poll: float = 0.01) -> bool:
    """Whether proc exited within timeout.

    Not proc.wait(): asyncio only returns from it once the pipes close too, and a fork
    server's children (orphans included) hold copies of its stdout and stderr.
    """
    deadline = time.monotonic() + timeout
    while proc.returncode is None and time.monotonic() < deadline:
        await asyncio.sleep(poll)
    return proc.returncode is not None


class Lab:
    def __init__(self, config: ServerConfig, *, rate: float = 10.0, port_fallback: bool | None = None) -> None:
        self.config = config
        self.rate = rate
        # The default port may be taken (another svcviz): then any free port, reported.
        self.port_fallback = config.port == DEFAULT_PORT if port_fallback is None else port_fallback
        self.controls_server = True
        self.server_pid: int | None = None
        self.paused = False
        self.status = "stopped"
        self.cap_hit: str | None = None
        self.fleet = Fleet(config.host, config.port)
        self._proc: asyncio.subprocess.Process | None = None
        self._spawned: set[int] = set()
        self._observer: Observer | None = None
        self._watch_target: dict[str, int] | None = None
        self._server_tasks: list[asyncio.Task] = []
        self._pending: list[Event] = []
        self._sampling = asyncio.Lock()
        self._prev: Snapshot | None = None
        self._holders: dict[int, set[int]] = {}  # client port -> pids that held its connection
        self._marked_gone: set[int] = set()
        self._samples = 0

    @classmethod
    def attach(cls, *, pid: int | None = None, port: int | None = None, rate: float = 10.0) -> Lab:
        """Watch a server svcviz did not start: observe it, send it clients, control nothing."""
        lab = cls(ServerConfig(model="watch", port=port or 0), rate=rate, port_fallback=False)
        lab.controls_server = False
        lab._watch_target = {"pid": pid} if pid is not None else {"port": port}
        return lab

    @property
    def port(self) -> int:
        return self.config.port

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        atexit.register(self.stop_now)
        if self.controls_server:
            await self._start_server()
        else:
            try:
                self._observer = Observer(**self._watch_target)
            except ObserveError as exc:
                raise LabError(str(exc)) from None
            self.server_pid = self._observer.root_pid
            self.config = replace(self.config, port=self._observer.port or self.config.port)
            self.fleet.retarget(self.config.host, self.config.port)
            self.status = "watching"

    async def stop(self) -> None:
        await self.fleet.close_all()
        await self._stop_server()
        self.status = "stopped"
        atexit.unregister(self.stop_now)

    def stop_now(self) -> None:
        """Kill the server's session at once: for atexit and signal handlers, no awaiting."""
        if self.controls_server and self.server_pid is not None:
            kill_session(self.server_pid)

    async def restart(self, **changes) -> None:
        """Stop the server and start it again on the same port with changed settings."""
        self._require_control()
        config = replace(self.config, **changes)
        try:
            config.check()
        except ServerError as exc:
            raise LabError(str(exc)) from None
        await self.fleet.close_all()
        await self._stop_server()
        self.config = config
        await self._start_server()

    async def switch_model(self, name: str) -> None:
        await self.restart(model=name)

    async def kill_server(self) -> None:
        """SIGKILL the server's root only: its children are orphaned, and adopted here."""
        self._require_control()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            self._note("server", f"killed the server (pid {self.server_pid}) with SIGKILL")

    async def cycle_sigchld(self) -> str:
        """Move the fork server's SIGCHLD handling on, live (its SIGUSR1)."""
        self._require_fork()
        mode = SIGCHLD_MODES[(SIGCHLD_MODES.index(self.config.sigchld) + 1) % len(SIGCHLD_MODES)]
        self._signal_server(signal.SIGUSR1)
        self.config = replace(self.config, sigchld=mode)
        return mode

    async def reap_now(self) -> None:
        """The fork server waitpid()s every zombie child now (its SIGUSR2)."""
        self._require_fork()
        self._signal_server(signal.SIGUSR2)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    # -- clients ---------------------------------------------------------------------

    async def add_clients(self, count: int = 1, kind: str = "interactive", **options) -> list[int]:
        """The ids of the clients added: all of them, or those that fitted under the cap."""
        try:
            return await self.fleet.add(kind=kind, count=count, **options)
        except FleetFull as exc:
            self.cap_hit = str(exc)
            self._note("cap", str(exc))
            return exc.added

    async def blast(self, count: int = 100) -> None:
        """The serviceblaster from inside the lab: count clients that each ask once and quit."""
        await self.add_clients(count, kind="scripted", queries=1)

    async def close_client(self, client_id: int | None = None) -> None:
        if client_id is None:
            open_ids = [c.id for c in self.fleet.clients() if c.open]
            if not open_ids:
                return
            client_id = max(open_ids)
        await self.fleet.close(client_id)

    async def close_all_clients(self) -> None:
        await self.fleet.close_all()

    async def send_line(self, client_id: int, text: str) -> None:
        await self.fleet.send_line(client_id, text)

    # -- updates ---------------------------------------------------------------------

    async def updates(self) -> AsyncIterator[LabUpdate]:
        """A sample every 1/rate seconds (none while paused).

        The consumer sets the pace: a slow one is sampled less often, so nothing piles up
        and no event is dropped. Each event is delivered once, to whichever takes the
        sample (this stream, or sample())."""
        period = 1.0 / self.rate
        while True:
            started = time.monotonic()
            if not self.paused:
                yield await self.sample()
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def sample(self) -> LabUpdate:
        """Take one sample now (the scenarios want one at a chosen moment)."""
        async with self._sampling:
            return await self._sample_once()

    # -- the server process ----------------------------------------------------------

    async def _start_server(self) -> None:
        try:
            await self._spawn(self.config)
        except LabError as exc:
            if not (self.port_fallback and "already in use" in str(exc)):
                raise
            busy = self.config.port
            await self._spawn(replace(self.config, port=0))
            self._note("server", f"port {busy} is busy: using {self.config.port}")
        self.fleet.retarget(self.config.host, self.config.port)

    async def _spawn(self, config: ServerConfig) -> None:
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
            preexec_fn=_die_with_parent,
        )
        self._spawned.add(proc.pid)
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        match = READY.search(line.decode(errors="replace"))
        if not match:
            kill_session(proc.pid)
            await proc.wait()
            self._spawned.discard(proc.pid)
            said = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
            reason = said[-1].removeprefix("svcviz serve: ") if said else "no ready line"
            raise LabError(f"{config.model} did not start: {reason}")
        self._proc = proc
        self.server_pid = proc.pid
        self.config = replace(config, port=int(match.group(2)))
        self.status = "running"
        self.cap_hit = None
        self._observer = Observer(pid=proc.pid)
        self._holders.clear()
        self._marked_gone.clear()
        self._note("server", f"started {config.model} on {match.group(1)}:{match.group(2)} (pid {proc.pid})")
        self._server_tasks = [
            asyncio.create_task(self._read_stderr(proc)),
            asyncio.create_task(self._drain(proc.stdout)),
            asyncio.create_task(self._watch_exit(proc)),
        ]

    async def _stop_server(self) -> None:
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
            reap_adopted(self._spawned - {proc.pid})
            await asyncio.sleep(0.01)
        reap_adopted(self._spawned)
        # The pipes reach EOF once every holder is dead, so the server's last words are kept.
        await asyncio.wait(self._server_tasks, timeout=STOP_GRACE)
        self._spawned.discard(proc.pid)
        self.server_pid = None

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        """The server's own words (EMFILE, cap reached, thread creation failed) as events."""
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").strip().removeprefix("svcviz: ")
            if " reached" in text:  # "process cap (256 processes) reached (256); waiting..."
                self.cap_hit = text
                self._note("cap", text)
            elif text.startswith(("accept:", "can't")) or "error" in text.lower():
                self._note("error", text)
            else:
                self._note("server", text)

    @staticmethod
    async def _drain(stream: asyncio.StreamReader) -> None:
        while await stream.read(4096):
            pass

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        await _exited(proc, poll=EXIT_POLL)
        code = proc.returncode
        if self._proc is not proc:
            return  # stopped on purpose
        self.status = (
            "killed"
            if code == -signal.SIGKILL
            else (f"exited (status {code})" if code >= 0 else f"exited (signal {-code})")
        )
        self._note("server", f"server {proc.pid} {self.status}")

    def _signal_server(self, sig: int) -> None:
        if self._proc is None or self._proc.returncode is not None:
            raise LabError("the server is not running")
        self._proc.send_signal(sig)

    def _require_control(self) -> None:
        if not self.controls_server:
            raise LabError("watching a server svcviz did not start: no control of it")

    def _require_fork(self) -> None:
        """SIGUSR1/SIGUSR2 are the fork server's controls; any other model dies of them."""
        self._require_control()
        if self.config.model != "fork":
            raise LabError(f"SIGCHLD handling is the fork model's: {self.config.model} has no children to wait for")

    # -- sampling --------------------------------------------------------------------

    def _note(self, kind: str, text: str) -> None:
        if len(self._pending) < MAX_PENDING_EVENTS:  # nobody sampling: keep the first ones
            self._pending.append(Event(time=time.time(), kind=kind, text=text, pid=self.server_pid))

    async def _sample_once(self) -> LabUpdate:
        observer = self._observer
        snapshot = await asyncio.to_thread(observer.sample) if observer else Snapshot(time=time.time(), root_pid=None)
        events = diff(self._prev, snapshot) if self._prev is not None else []
        self._prev = snapshot
        self._reap_orphans(snapshot)
        self._check_caps(snapshot)
        self._notice_hung_clients(snapshot)
        lab_events, self._pending = self._pending, []
        merged = tuple(sorted([*events, *lab_events], key=lambda e: e.time))
        return LabUpdate(
            snapshot=snapshot,
            events=merged,
            clients=self.fleet.clients(),
            config=self.config,
            server_pid=self.server_pid,
            status=self.status,
            cap_hit=self.cap_hit,
        )

    def _reap_orphans(self, snapshot: Snapshot) -> None:
        """waitpid() the adopted orphans that died: those the observer saw cost nothing to
        find; a scan of all /proc, for orphans that lived and died between two samples,
        runs about once a second (it is the dearest part of a sample on a big machine)."""
        me = os.getpid()
        for process in snapshot.processes:
            if process.zombie and process.ppid == me and process.pid not in self._spawned:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(process.pid, os.WNOHANG)
        self._samples += 1
        if self._samples % max(1, round(self.rate)) == 0:
            reap_adopted(self._spawned)

    def _check_caps(self, snapshot: Snapshot) -> None:
        """The second line of defence: a tree past its cap is stopped, whatever the model did."""
        if not self.controls_server or self._proc is None or self._proc.returncode is not None:
            return
        over = None
        if len(snapshot.processes) > self.config.cap_procs:
            over = f"{len(snapshot.processes)} processes > cap {self.config.cap_procs}"
        elif snapshot.thread_total > self.config.cap_threads:
            over = f"{snapshot.thread_total} threads > cap {self.config.cap_threads}"
        if over:
            self.cap_hit = f"server stopped: {over}"
            self._note("cap", self.cap_hit)
            kill_session(self._proc.pid)

    def _notice_hung_clients(self, snapshot: Snapshot) -> None:
        """Tell the fleet when the process that served a client is gone but the connection
        lives on in another (the fork server that leaks its fds): that client will hang."""
        if not self.fleet.alive():  # watching a busy server with no clients of ours: nothing to do
            self._holders, self._marked_gone = {}, set()
            return
        living = {p.pid for p in snapshot.processes if not p.zombie}
        holders_now: dict[int, set[int]] = {}
        for process in snapshot.processes:
            if process.zombie:
                continue
            for fd in process.fds:
                if fd.kind == "conn" and fd.peer:
                    holders_now.setdefault(int(fd.peer.rsplit(":", 1)[1]), set()).add(process.pid)
        # Only connections alive now are remembered: a long churn must not grow these.
        self._holders = {port: self._holders.get(port, set()) | holders for port, holders in holders_now.items()}
        self._marked_gone &= holders_now.keys()
        for port, seen in self._holders.items():
            if port not in self._marked_gone and seen - living:
                self._marked_gone.add(port)
                self.fleet.mark_server_gone(port)
