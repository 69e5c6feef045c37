"""Lab: the one object the dashboard and the scenarios drive; it composes the lab's jobs
(supervisor, caps, orphans, hung) around the observer and the client fleet."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from svcviz.clients import ClientView, Fleet, FleetError, FleetFull
from svcviz.clients.protocols import detect
from svcviz.lab.caps import Caps
from svcviz.lab.errors import LabError
from svcviz.lab.halfopen import HalfOpenClients
from svcviz.lab.hung import HungClients
from svcviz.lab.orphans import OrphanReaper, become_subreaper
from svcviz.lab.supervisor import Supervisor
from svcviz.observe.events import diff
from svcviz.observe.observer import ObserveError, Observer
from svcviz.observe.snapshot import Event, Process, Snapshot
from svcviz.observe.titles import title_of
from svcviz.servers.config import DEFAULT_PORT, SIGCHLD_MODES, ServerConfig, ServerError
from svcviz.servers.notice import CAP, ERROR, Notice
from svcviz.servers.registry import SIGCHLD_MODEL, model_of

if TYPE_CHECKING:
    from svcviz.observe.snapshot import EventKind

MAX_PENDING_EVENTS = 1000
# Adaptive pace: the full rate while anything moves, STILL_RATE once nothing has moved (no
# event, no process, socket or client changed) for STILL_AFTER seconds. A still
# server costs a fifth of the samples; a key that steers the lab, or any change seen,
# brings the full rate back at once. The header says when the pace is the slow one.
STILL_RATE = 2.0
STILL_AFTER = 1.0
WATCHED = "watch"  # the model shown for a server svcviz did not start: none of the registry's


class LabUpdate(NamedTuple):
    snapshot: Snapshot
    events: tuple[Event, ...]  # new since the previous update
    clients: tuple[ClientView, ...]
    config: ServerConfig
    server_pid: int | None
    status: str  # "running", "exited (status 0)", "killed", "stopped", "watching", "gone: ..."
    cap_hit: str | None
    still: bool = False  # nothing moved for a while: sampled at STILL_RATE, not the full rate
    client_protocol: str = "line"  # what the clients speak, and why: "http (port 8080)"


class _WatchTarget(NamedTuple):
    """The server `svcviz watch` names: by pid or by port (addr: which listener on it), and
    in which network namespace (the Observer's arguments)."""

    pid: int | None
    port: int | None
    addr: tuple[str, int] | None
    netns: str | None


def _changed(config: ServerConfig, settings: Iterable[tuple[str, object]]) -> ServerConfig:
    """config with some fields set by name (a model's dashboard settings): check() judges the values."""
    changes: dict[str, Any] = dict(settings)  # Any: each field its own type, only known by name here
    return config._replace(**changes)


class Lab:
    def __init__(
        self,
        config: ServerConfig,
        *,
        rate: float = 10.0,
        port_fallback: bool | None = None,
        client_protocol: str | None = None,
    ) -> None:
        self.config = config
        self.rate = rate
        # The default port may be taken (another svcviz): then any free port, reported.
        self.port_fallback = config.port == DEFAULT_PORT if port_fallback is None else port_fallback
        self.controls_server = True
        self.paused = False
        self.fleet = Fleet(config.host, config.port)
        # None: line for our models; for a watched server, told by its port or program at start.
        self._protocol_asked = client_protocol
        self.client_protocol = "line"
        if client_protocol is not None:
            self._speak(client_protocol, "--client-protocol")
        self.server = Supervisor(note=self._note, hear=self._hear)
        self.caps = Caps(note=self._note)
        self._orphans = OrphanReaper(self.server.spawned, scan_every=round(rate))  # about once a second
        self._hung = HungClients(self.fleet)
        self._half_open = HalfOpenClients(self.fleet)
        self._observer: Observer | None = None
        self._watch_target: _WatchTarget | None = None  # set when watching, not controlling
        self._watched_pid: int | None = None
        self._watch_status = "stopped"
        self._pending: list[Event] = []
        self._sampling = asyncio.Lock()
        self._prev: Snapshot | None = None
        self._prev_clients: tuple[ClientView, ...] = ()
        self._moved_at = time.monotonic()
        self._stirred = asyncio.Event()  # a control call: end a slow pause between samples now

    @classmethod
    def attach(
        cls,
        *,
        pid: int | None = None,
        port: int | None = None,
        rate: float = 10.0,
        addr: tuple[str, int] | None = None,
        netns: str | None = None,
        client_protocol: str | None = None,
        observer: Observer | None = None,
    ) -> Lab:
        """Watch a server svcviz did not start: observe it, send it clients (in its language),
        control nothing. addr: the one listener of several on its port; netns: where to look
        (see Observer). observer: one made already for this target (`svcviz watch` makes one to
        check it), taken over instead of finding the server again."""
        lab = cls(
            ServerConfig(model=WATCHED, port=port or (addr[1] if addr else 0)),
            rate=rate,
            port_fallback=False,
            client_protocol=client_protocol,
        )
        lab.controls_server = False
        by_port = port or (addr[1] if addr else None)
        lab._watch_target = _WatchTarget(pid, by_port if pid is None else None, addr, netns)
        lab._observer = observer
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
            target = self._watch_target
            assert target is not None  # attach() set it
            if self._observer is None:
                try:  # in a thread: finding the server reads every process's fds, the first frame paints meanwhile
                    self._observer = await asyncio.to_thread(
                        Observer, target.pid, target.port, addr=target.addr, netns=target.netns
                    )
                except ObserveError as exc:
                    raise LabError(str(exc)) from None
            self._watched_pid = self._observer.root_pid
            if self._observer.notice:
                self._note("server", self._observer.notice)
            # Clients go where the server listens: its address and family, its namespace.
            host = self._observer.connect_host or self.config.host
            self.config = self.config._replace(host=host, port=self._observer.port or self.config.port)
            self.fleet.retarget(self.config.host, self.config.port, self._observer.netns)
            if self._protocol_asked is None:
                self._speak(*detect(self.config.port, _title(self._watched_pid)))
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

    async def restart(self, **changes: Any) -> None:
        """Stop the server and start it again on the same port with changed settings (ServerConfig
        fields: each its own type, hence Any; config.check() judges the values)."""
        self._require_control()
        self.stir()
        config = self.config._replace(**changes)
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
        config = _changed(
            defaults._replace(cap_procs=self.config.cap_procs, cap_threads=self.config.cap_threads),
            model.dashboard if model else (),
        )
        await self.fleet.start_over()
        await self.restart(**config._asdict())

    async def forget_finished_clients(self) -> int:
        return self.fleet.forget_finished()

    async def kill_server(self) -> None:
        """SIGKILL the server's root only: its children are orphaned, and adopted here."""
        self._require_control()
        self.stir()
        self.server.kill_root()

    async def cycle_sigchld(self) -> str:
        """Move the fork server's SIGCHLD handling on, live (its SIGUSR1)."""
        self._require_fork()
        self.stir()
        mode = SIGCHLD_MODES[(SIGCHLD_MODES.index(self.config.sigchld) + 1) % len(SIGCHLD_MODES)]
        self.server.signal(signal.SIGUSR1)
        self.config = self.config._replace(sigchld=mode)
        return mode

    async def reap_now(self) -> None:
        """The fork server waitpid()s every zombie child now (its SIGUSR2)."""
        self._require_fork()
        self.stir()
        self.server.signal(signal.SIGUSR2)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self.stir()

    def stir(self) -> None:
        """Something was asked of the lab: sample at the full rate again, from now."""
        self._moved_at = time.monotonic()
        self._stirred.set()

    @property
    def still(self) -> bool:
        return time.monotonic() - self._moved_at >= STILL_AFTER

    # -- clients ---------------------------------------------------------------------

    async def add_clients(self, count: int = 1, kind: str = "interactive", **options: object) -> list[int]:
        """The ids of the clients added: all of them, or those that fitted under the cap."""
        self.stir()
        try:
            return await self.fleet.add(kind=kind, count=count, **options)
        except FleetFull as exc:
            self.caps.reached(str(exc))
            return exc.added

    async def blast(self, count: int = 100) -> None:
        """The serviceblaster from inside the lab: count clients that each ask once and quit."""
        await self.add_clients(count, kind="scripted", queries=1)

    async def close_client(self, client_id: int | None = None) -> None:
        self.stir()
        if client_id is None:
            open_ids = [c.id for c in self.fleet.clients() if c.open]
            if not open_ids:
                return
            client_id = max(open_ids)
        await self.fleet.close(client_id)

    async def close_all_clients(self) -> None:
        self.stir()
        await self.fleet.close_all()

    async def send_line(self, client_id: int, text: str) -> None:
        self.stir()
        await self.fleet.send_line(client_id, text)

    # -- updates ---------------------------------------------------------------------

    async def updates(self) -> AsyncIterator[LabUpdate]:
        """A sample every 1/rate seconds while anything moves, 1/STILL_RATE once nothing has
        (none while paused).

        The consumer sets the pace: a slow one is sampled less often, so nothing piles up
        and no event is dropped. Each event is delivered once, to whichever takes the
        sample (this stream, or sample())."""
        while True:
            started = time.monotonic()
            if not self.paused:
                yield await self.sample()
            period = 1.0 / (min(STILL_RATE, self.rate) if self.still else self.rate)
            self._stirred.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stirred.wait(), max(0.0, period - (time.monotonic() - started)))

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

    def _speak(self, name: str, why: str) -> None:
        try:
            self.fleet.set_protocol(name)
        except FleetError as exc:
            raise LabError(str(exc)) from None
        self.client_protocol = f"{name} ({why})"

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

    def _note(self, kind: EventKind, text: str) -> None:
        if len(self._pending) < MAX_PENDING_EVENTS:  # nobody sampling: keep the first ones
            self._pending.append(Event(time=time.time(), kind=kind, text=text, pid=self.server_pid))

    async def _sample_once(self) -> LabUpdate:
        observer = self._observer
        snapshot = await asyncio.to_thread(observer.sample) if observer else Snapshot(time=time.time(), root_pid=None)
        if not self.controls_server and observer is not None and await self._follow_watched(snapshot):
            self._prev = None  # another server: its processes did not fork from the old one's
        previous = self._prev
        events = diff(previous, snapshot) if previous is not None else []
        self._prev = snapshot
        self._orphans.reap(snapshot)
        if self.server.running and self.caps.exceeded(snapshot, self.config):
            self.server.kill_all()  # the second line of defence: a tree past its cap is stopped
        self._hung.check(snapshot)
        self._half_open.check(snapshot)
        lab_events, self._pending = self._pending, []
        events = [self._as_the_kernel_did(event) for event in events]
        merged = tuple(sorted([*events, *lab_events], key=lambda e: e.time))
        clients = self.fleet.clients()
        news = any(event.kind != "dropped" for event in merged)  # drops: machine-wide, see _moved
        if news or clients != self._prev_clients or _moved(previous, snapshot):
            self._moved_at = time.monotonic()
        self._prev_clients = clients
        return LabUpdate(
            snapshot=snapshot,
            events=merged,
            clients=clients,
            config=self.config,
            server_pid=self.server_pid,
            status=self.status,
            cap_hit=self.cap_hit,
            still=self.still,
            client_protocol=self.client_protocol,
        )

    def _as_the_kernel_did(self, event: Event) -> Event:
        """The observer sees a child vanish; only the lab knows the server ignores SIGCHLD,
        so that nobody waited: the kernel discarded it."""
        if event.kind == "reaped" and self.controls_server and self.config.sigchld == "ignore":
            parent = event.text.rsplit(" ", 1)[-1]
            if parent == str(self.server_pid):
                return event._replace(text=f"{event.pid} discarded by the kernel (SIGCHLD ignored): nobody waited")
        return event

    async def _follow_watched(self, snapshot: Snapshot) -> bool:
        """Keep the header and status true about a watched server that exits and comes back.
        Watching a port, the observer follows its next listener: say so. Watching a pid,
        say that it is gone and what listens on its port now. True if the server changed."""
        target, observer = self._watch_target, self._observer
        assert target is not None and observer is not None  # watching: attach() and start() set them
        if snapshot.root_pid is None:  # its process cannot be read: the sockets are all we see
            return False
        if snapshot.root_pid != self._watched_pid:
            self._note("server", f"server restarted: pid {self._watched_pid} -> {snapshot.root_pid}")
            self._watched_pid, self._watch_status = snapshot.root_pid, "watching"
            return True
        if any(p.pid == snapshot.root_pid and not p.zombie for p in snapshot.processes):
            return False
        port = self.config.port
        if target.pid is None:  # watching a port
            status = f"gone: nothing listens on port {port}; the next server on it will be followed"
        else:
            now = await asyncio.to_thread(observer.listener_on, port)
            status = (
                f"gone: nothing listens on port {port}"
                if now is None
                else f"gone: pid {now} listens on port {port} now (svcviz watch --port {port} follows it)"
            )
        if status != self._watch_status:
            self._note("server", f"process {self._watched_pid} is {status}")
            self._watch_status = status
        return False


def _moved(previous: Snapshot | None, snapshot: Snapshot) -> bool:
    """Whether the server changed between two samples. Cheap when it did not: the observer
    hands back the same objects for what is unchanged, and tuples compare identity first.
    Not a move: a process or thread that only went from running to sleeping or back (an
    idle server's timer wakes it now and then: the fork parent of the dashboard benchmark's
    lab did every third sample; a state seen at one instant is a sample either way), and
    the machine's listen-drop counters (they count every socket of the machine: another
    program's full queue moved them through the benchmark runs; a drop of this server's
    fills its accept queue first, which its connections show)."""
    if previous is None:
        return True
    if previous.connections != snapshot.connections or previous.listen != snapshot.listen:
        return True
    if previous.processes == snapshot.processes:
        return False
    if len(previous.processes) != len(snapshot.processes):
        return True
    return not all(a == b or _same_but_state(a, b) for a, b in zip(previous.processes, snapshot.processes, strict=True))


def _same_but_state(a: Process, b: Process) -> bool:
    return (
        a._replace(state=b.state, threads=b.threads) == b
        and a.zombie == b.zombie
        and [t.tid for t in a.threads] == [t.tid for t in b.threads]
    )


def _title(pid: int | None) -> str:
    """The watched program's title (its cmdline as it set it), "" when it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return title_of(f.read().decode(errors="replace"))
    except OSError:
        return ""
