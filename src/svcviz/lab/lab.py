"""Lab: the one object the dashboard and the scenarios drive; it composes the lab's jobs
(supervisor, caps, orphans, hung) around the observer and the client fleet."""

from __future__ import annotations

import asyncio
import atexit
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields, replace

from svcviz.clients import ClientView, Fleet, FleetFull
from svcviz.lab.caps import Caps
from svcviz.lab.errors import LabError
from svcviz.lab.halfopen import HalfOpenClients
from svcviz.lab.hung import HungClients
from svcviz.lab.orphans import OrphanReaper, become_subreaper
from svcviz.lab.supervisor import Supervisor
from svcviz.observe.events import diff
from svcviz.observe.observer import ObserveError, Observer
from svcviz.observe.snapshot import Event, Snapshot
from svcviz.servers.config import DEFAULT_PORT, SIGCHLD_MODES, ServerConfig, ServerError
from svcviz.servers.notice import CAP, ERROR, Notice
from svcviz.servers.registry import SIGCHLD_MODEL, model_of

MAX_PENDING_EVENTS = 1000
WATCHED = "watch"  # the model shown for a server svcviz did not start: none of the registry's


@dataclass(frozen=True)
class LabUpdate:
    snapshot: Snapshot
    events: tuple[Event, ...]  # new since the previous update
    clients: tuple[ClientView, ...]
    config: ServerConfig
    server_pid: int | None
    status: str  # "running", "exited (status 0)", "killed", "stopped", "watching", "gone: ..."
    cap_hit: str | None


class Lab:
    def __init__(self, config: ServerConfig, *, rate: float = 10.0, port_fallback: bool | None = None) -> None:
        self.config = config
        self.rate = rate
        # The default port may be taken (another svcviz): then any free port, reported.
        self.port_fallback = config.port == DEFAULT_PORT if port_fallback is None else port_fallback
        self.controls_server = True
        self.paused = False
        self.fleet = Fleet(config.host, config.port)
        self.server = Supervisor(note=self._note, hear=self._hear)
        self.caps = Caps(note=self._note)
        self._orphans = OrphanReaper(self.server.spawned, scan_every=round(rate))  # about once a second
        self._hung = HungClients(self.fleet)
        self._half_open = HalfOpenClients(self.fleet)
        self._observer: Observer | None = None
        self._watch_target: dict[str, int] | None = None
        self._watched_pid: int | None = None
        self._watch_status = "stopped"
        self._pending: list[Event] = []
        self._sampling = asyncio.Lock()
        self._prev: Snapshot | None = None

    @classmethod
    def attach(cls, *, pid: int | None = None, port: int | None = None, rate: float = 10.0) -> Lab:
        """Watch a server svcviz did not start: observe it, send it clients, control nothing."""
        lab = cls(ServerConfig(model=WATCHED, port=port or 0), rate=rate, port_fallback=False)
        lab.controls_server = False
        lab._watch_target = {"pid": pid} if pid is not None else {"port": port}
        return lab

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def server_pid(self) -> int | None:
        return self.server.pid if self.controls_server else self._watched_pid

    @property
    def status(self) -> str:
        return self.server.status if self.controls_server else self._watch_status

    @property
    def cap_hit(self) -> str | None:
        return self.caps.hit

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        become_subreaper()
        atexit.register(self.stop_now)
        if self.controls_server:
            await self._start_server()
        else:
            try:
                self._observer = Observer(**self._watch_target)
            except ObserveError as exc:
                raise LabError(str(exc)) from None
            self._watched_pid = self._observer.root_pid
            if self._observer.notice:
                self._note("server", self._observer.notice)
            self.config = replace(self.config, port=self._observer.port or self.config.port)
            self.fleet.retarget(self.config.host, self.config.port)
            self._watch_status = "watching"

    async def stop(self) -> None:
        await self.fleet.close_all()
        await self.server.stop()
        self._watch_status = "stopped"
        atexit.unregister(self.stop_now)

    def stop_now(self) -> None:
        """Kill the server's session at once: for atexit and signal handlers, no awaiting."""
        if self.controls_server:
            self.server.kill_all()

    async def restart(self, **changes) -> None:
        """Stop the server and start it again on the same port with changed settings."""
        self._require_control()
        config = replace(self.config, **changes)
        try:
            config.check()
        except ServerError as exc:
            raise LabError(str(exc)) from None
        await self.fleet.close_all()
        await self.server.stop()
        self.config = config
        await self._start_server()

    async def switch_model(self, name: str) -> None:
        """A new lesson: the new model at its defaults (and the dashboard's settings for its
        lesson), with none of the old model's clients; numbering starts at #1 again."""
        self._require_control()
        model = model_of(name)
        defaults = ServerConfig(model=name, host=self.config.host, port=self.config.port)
        config = replace(
            defaults,
            cap_procs=self.config.cap_procs,
            cap_threads=self.config.cap_threads,
            **dict(model.dashboard if model else ()),
        )
        await self.fleet.start_over()
        await self.restart(**{f.name: getattr(config, f.name) for f in fields(config)})

    async def forget_finished_clients(self) -> int:
        return self.fleet.forget_finished()

    async def kill_server(self) -> None:
        """SIGKILL the server's root only: its children are orphaned, and adopted here."""
        self._require_control()
        self.server.kill_root()

    async def cycle_sigchld(self) -> str:
        """Move the fork server's SIGCHLD handling on, live (its SIGUSR1)."""
        self._require_fork()
        mode = SIGCHLD_MODES[(SIGCHLD_MODES.index(self.config.sigchld) + 1) % len(SIGCHLD_MODES)]
        self.server.signal(signal.SIGUSR1)
        self.config = replace(self.config, sigchld=mode)
        return mode

    async def reap_now(self) -> None:
        """The fork server waitpid()s every zombie child now (its SIGUSR2)."""
        self._require_fork()
        self.server.signal(signal.SIGUSR2)

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
            self.caps.reached(str(exc))
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

    # -- the pieces, put together ----------------------------------------------------

    async def _start_server(self) -> None:
        self.config = await self.server.start(self.config, port_fallback=self.port_fallback)
        self.fleet.retarget(self.config.host, self.config.port)
        self.caps.clear()
        self._hung.forget()
        self._observer = Observer(pid=self.server.pid)

    def _hear(self, notice: Notice) -> None:
        """The server's own words (EMFILE, cap reached, thread creation failed) as events."""
        if notice.kind == CAP:
            self.caps.reached(notice.text)
        else:
            self._note("error" if notice.kind == ERROR else "server", notice.text)

    def _require_control(self) -> None:
        if not self.controls_server:
            raise LabError("watching a server svcviz did not start: no control of it")

    def _require_fork(self) -> None:
        """SIGUSR1/SIGUSR2 are the fork server's controls; any other model dies of them."""
        self._require_control()
        model = model_of(self.config.model)
        if model is None or not model.sigchld_controls:
            raise LabError(
                f"SIGCHLD handling is the {SIGCHLD_MODEL.name} model's: {self.config.model} has no children to wait for"
            )

    def _note(self, kind: str, text: str) -> None:
        if len(self._pending) < MAX_PENDING_EVENTS:  # nobody sampling: keep the first ones
            self._pending.append(Event(time=time.time(), kind=kind, text=text, pid=self.server_pid))

    async def _sample_once(self) -> LabUpdate:
        observer = self._observer
        snapshot = await asyncio.to_thread(observer.sample) if observer else Snapshot(time=time.time(), root_pid=None)
        if not self.controls_server and observer is not None and await self._follow_watched(snapshot):
            self._prev = None  # another server: its processes did not fork from the old one's
        events = diff(self._prev, snapshot) if self._prev is not None else []
        self._prev = snapshot
        self._orphans.reap(snapshot)
        if self.server.running and self.caps.exceeded(snapshot, self.config):
            self.server.kill_all()  # the second line of defence: a tree past its cap is stopped
        self._hung.check(snapshot)
        self._half_open.check(snapshot)
        lab_events, self._pending = self._pending, []
        events = [self._as_the_kernel_did(event) for event in events]
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

    def _as_the_kernel_did(self, event: Event) -> Event:
        """The observer sees a child vanish; only the lab knows the server ignores SIGCHLD,
        so that nobody waited: the kernel discarded it."""
        if event.kind == "reaped" and self.controls_server and self.config.sigchld == "ignore":
            parent = event.text.rsplit(" ", 1)[-1]
            if parent == str(self.server_pid):
                return replace(event, text=f"{event.pid} discarded by the kernel (SIGCHLD ignored): nobody waited")
        return event

    async def _follow_watched(self, snapshot: Snapshot) -> bool:
        """Keep the header and status true about a watched server that exits and comes back.
        Watching a port, the observer follows its next listener: say so. Watching a pid,
        say that it is gone and what listens on its port now. True if the server changed."""
        if snapshot.root_pid != self._watched_pid:
            self._note("server", f"server restarted: pid {self._watched_pid} -> {snapshot.root_pid}")
            self._watched_pid, self._watch_status = snapshot.root_pid, "watching"
            return True
        if any(p.pid == snapshot.root_pid and not p.zombie for p in snapshot.processes):
            return False
        port = self.config.port
        if "port" in self._watch_target:
            status = f"gone: nothing listens on port {port}; the next server on it will be followed"
        else:
            now = await asyncio.to_thread(self._observer.listener_on, port)
            status = (
                f"gone: nothing listens on port {port}"
                if now is None
                else f"gone: pid {now} listens on port {port} now (svcviz watch --port {port} follows it)"
            )
        if status != self._watch_status:
            self._note("server", f"process {self._watched_pid} is {status}")
            self._watch_status = status
        return False
