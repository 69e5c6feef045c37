"""The svcviz dashboard: a lab (server model, clients, observer) drawn live.

The lab is consumed in a worker; each sample becomes a LabUpdated message, coalesced when
the app is busy, and sets the app's reactive `latest`, which every panel is bound to
(data_bind): a panel repaints when the part it draws changed. Keys call the lab in
workers, serialized by a lock, so a restart never blocks drawing.

The lab is anything shaped like svcviz.lab.Lab (the LabLike protocol): start/stop, an
async stream of LabUpdates, the control calls (tests feed recorded updates through a fake one).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static

from svcviz.lab import Lab, LabError, LabLike, LabUpdate
from svcviz.observe.snapshot import Event, Snapshot
from svcviz.plain import plain
from svcviz.servers.config import ServerConfig
from svcviz.servers.registry import LEAK_FD_LIMIT, MODELS, SIGCHLD_MODEL, model_of
from svcviz.tui.messages import LabUpdated
from svcviz.tui.past import Past
from svcviz.tui.screens import HelpScreen, ModelPicker, SendLine
from svcviz.tui.widgets import (
    ClientsPanel,
    EventsPanel,
    LabHeader,
    LessonPanel,
    ListenPanel,
    PicturePanel,
    ServerPanel,
    SparksPanel,
)
from svcviz.tui.widgets.clients import ClientTable
from svcviz.tui.widgets.code import CodePanel
from svcviz.tui.widgets.events import KEEP

if TYPE_CHECKING:  # what a key opens (t: tracing, |: the pipelines) is imported by its key, not by the first frame
    from svcviz.observe.observer import Observer
    from svcviz.record.reader import Recording
    from svcviz.tui.tracing import SyscallTrace

MIN_WIDTH, MIN_HEIGHT = 80, 24
WIDE = 140  # columns from which the server panel gets 3/5 of the width (app.tcss: Screen.wide)
PICTURE_MIN = (100, 30)  # the terminal the picture panel needs (g): at 80x24 it is off
PICTURE_DEFAULT = (120, 36)  # and where it is on from the start


def picture_fits(width: int, height: int) -> bool:
    return width >= PICTURE_MIN[0] and height >= PICTURE_MIN[1]


def picture_too_small(width: int, height: int) -> str:
    return (
        f"the picture needs a terminal of {PICTURE_MIN[0]}x{PICTURE_MIN[1]} or more (this one is {width}x{height}): "
        "the panels show the same"
    )


STOP_TIMEOUT = 5.0
NO_TTY = (
    "svcviz: the dashboard needs a terminal; for one snapshot without one use "
    "`svcviz watch --once --port PORT` (add --json for machines)"
)
WEB_DRIVER = "textual.drivers.web_driver:WebDriver"  # what `svcviz web` (textual-serve) runs a tab with
# Actions that steer the server: off when watching a server svcviz did not start.
SERVER_ACTIONS = {"switch", "pick_model", "sigchld", "close_fd", "reap", "backlog", "restart", "kill"}


def model_bindings() -> list[Binding]:
    return [Binding(model.key, f"switch('{model.name}')", f"Switch to {model.name}", show=False) for model in MODELS]


def size_classes(width: int, height: int) -> dict[str, bool]:
    """The screen's classes its size decides (app.tcss lays them out)."""
    return {"wide": width >= WIDE, "too-small": width < MIN_WIDTH or height < MIN_HEIGHT}


class SvcvizApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "svcviz"
    # Textual types BINDINGS as list[BindingType] (tuples allowed too): this app's are all
    # Binding, whose fields the help screen and the command palette read. Textual only
    # reads the list, so the narrower (invariant) list type is safe to declare.
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("c", "add_clients(1)", "Add client"),
        Binding("C", "add_clients(10)", "Add ten", show=False),
        Binding("b", "blast", "Blast 100", show=False),
        Binding("h", "half_close", "Half-close", show=False),
        Binding("x", "close_client", "Close"),
        Binding("e", "clear_finished", "Clear ended clients", show=False),
        Binding("X", "close_all", "Close all", show=False),
        Binding("enter", "send_line", "Type a line into the selected client", show=False),
        *model_bindings(),
        Binding("m", "pick_model", "Models"),
        Binding("s", "sigchld", "SIGCHLD", show=False),
        Binding("f", "close_fd", "Close fd on/off", show=False),
        Binding("w", "reap", "Reap now", show=False),
        Binding("plus", "backlog(1)", "Backlog +1", show=False),
        Binding("minus", "backlog(-1)", "Backlog -1", show=False),
        Binding("r", "restart", "Restart server", show=False),
        Binding("k", "kill", "Kill"),
        Binding("a", "evidence", "Why this architecture", show=False),
        Binding("v", "code", "Code panel on/off", show=False),
        Binding("t", "trace", "Trace the server's syscalls on/off", show=False),
        Binding("y", "syscall_lines", "Syscall lines in the log on/off", show=False),
        Binding("p", "pause", "Pause", show=False),
        Binding("l", "lesson", "Lesson"),
        Binding("g", "toggle_picture", "The picture on/off", show=False),
        Binding("vertical_line", "pipes", "The lecture's pipelines: yes | parse | sort, the cats", show=False),
        # Priority: the client table would take the arrows; unpaused they pass on to it.
        Binding("left", "step(-1)", "Back a sample (paused)", show=False, priority=True),
        Binding("right", "step(1)", "Forward a sample (paused)", show=False, priority=True),
        Binding("S", "save_svg", "Save the screen as SVG", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    latest: var[LabUpdate | None] = var(None)  # the newest sample drawn; the panels bind to it
    event_log: var[tuple[Event, ...]] = var(())  # the newest KEEP events, oldest first
    paused = var(False)
    picture = var(False)  # the picture instead of the server and clients panels (g)
    syscall_log: var[tuple[Event, ...]] = var(())  # the newest traced calls (t), oldest first
    moment = var("")  # when the screen is not the newest sample: which moment it shows

    REPLAY = False  # a recording played back (ReplayApp), not a lab
    svg_dir = "."  # where S saves the screen

    def __init__(self, lab: LabLike, *, handle_signals: bool = False, picture: bool | None = None) -> None:
        """picture: the picture panel on or off from the start; None: on for the lecture's
        models in a terminal of PICTURE_DEFAULT or more."""
        super().__init__()
        self.lab = lab
        self._picture_at_start = picture
        self.watching = not lab.controls_server  # watch mode: Lab.attach
        self.handle_signals = handle_signals
        self.error: str | None = None
        # Events of updates not drawn yet: a superseded LabUpdated leaves its events here.
        self._unshown_events: list[Event] = []
        self._control_lock = asyncio.Lock()
        self._quitting = False
        self._trace: SyscallTrace | None = None
        self.past = Past()  # the last minute of samples, to step back through while paused
        self._picture_before_code = False  # the picture was on when v showed the code
        self._log_now: tuple[Event, ...] = ()  # the event log of the newest sample, while in the past

    # -- layout ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        latest = SvcvizApp.latest
        yield LabHeader(watching=self.watching, replay=self.REPLAY, id="header").data_bind(
            latest, SvcvizApp.paused, SvcvizApp.moment
        )
        yield Static(id="banner")
        with Horizontal(id="main"):
            yield PicturePanel(id="picture").data_bind(latest)
            with Vertical(id="left"):
                yield ServerPanel(id="server").data_bind(latest)
                yield ListenPanel(id="listen").data_bind(latest)
            yield CodePanel(id="code").data_bind(latest)
            with Vertical(id="right"):
                yield ClientsPanel(id="clients").data_bind(latest)
                yield EventsPanel(id="events").data_bind(entries=SvcvizApp.event_log, syscalls=SvcvizApp.syscall_log)
        with Horizontal(id="bottom"):
            yield LessonPanel(id="lesson").data_bind(latest)
            yield SparksPanel(id="sparks").data_bind(latest)
        yield Static(id="too-small")
        yield Footer()

    def _picture_from_start(self, width: int, height: int) -> bool:
        """On from the start for the lecture's models when there is room for it."""
        wanted = self._picture_at_start
        if wanted is None:
            wanted = not self.watching and width >= PICTURE_DEFAULT[0] and height >= PICTURE_DEFAULT[1]
        return wanted and picture_fits(width, height)

    def get_default_screen(self) -> Screen[object]:
        """The screen born with the classes its size gives it: each class set later restyles
        every widget (~40 ms a class on this machine, three of them before the first frame)."""
        width, height = self.size
        classes = {**size_classes(width, height), "picture": self._picture_from_start(width, height)}
        return Screen(id="_default", classes=" ".join(name for name, on in classes.items() if on))

    def on_mount(self) -> None:
        self.query_one(ClientTable).focus()
        self._check_size(self.size.width, self.size.height)
        width, height = self.size
        self.picture = self._picture_from_start(width, height)
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, lambda: self.run_worker(self.action_quit()))
            loop.add_signal_handler(signal.SIGHUP, lambda: self.run_worker(self._hang_up()))
        self.run_worker(self._run_lab(), group="lab")
        self.call_after_refresh(_collector_back_on)

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        if self.picture and not picture_fits(width, height):
            self.picture = False
            self.notify(picture_too_small(width, height), severity="warning")
        sized = size_classes(width, height)
        for name, on in sized.items():
            self.screen.set_class(on, name)
        if sized["too-small"]:
            self.query_one("#too-small", Static).update(
                f"The terminal is {width}x{height}: svcviz needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\n"
                "Make the window larger (q quits)."
            )

    # -- the lab -------------------------------------------------------------------------

    async def _run_lab(self) -> None:
        # Under the control lock: a key pressed while the first server is still starting (the
        # screen is up long before it on a loaded machine) waits for it. Unserialized, a switch
        # stopped the server mid-start, or ran a second one beside it.
        async with self._control_lock:
            try:
                await self.lab.start()
            except LabError as exc:
                self.error = str(exc)
                await self.lab.stop()
                self.exit(2, return_code=2)
                return
        async for update in self.lab.updates():
            self._unshown_events.extend(update.events)
            self.post_message(LabUpdated(update))

    def on_lab_updated(self, message: LabUpdated) -> None:
        if not self.is_running:
            return  # an update queued before the app began to shut down: its panels are gone
        update = message.update
        if self._unshown_events:
            self.event_log = (*self.event_log, *self._unshown_events)[-KEEP:]
            self._unshown_events = []
        self.past.add(update)
        self.moment = ""
        if not _same_picture(self.latest, update):
            self.latest = update

    def watch_latest(self, update: LabUpdate | None) -> None:
        if update is None:
            return
        banner = self.query_one("#banner", Static)
        banner.display = bool(update.cap_hit)
        if update.cap_hit:
            banner.update(Text(f" cap: {plain(update.cap_hit)} ", style="bold"))

    def _control(self, make: Callable[[], Awaitable[object]]) -> None:
        """Run a lab call in a worker, one at a time; a LabError becomes a notice."""

        async def run() -> None:
            async with self._control_lock:
                if self._quitting:
                    return
                try:
                    await make()
                except LabError as exc:
                    self.notify(plain(str(exc)), severity="error", markup=False)

        self.run_worker(run(), group="control")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.watching and action in SERVER_ACTIONS)

    def _fork_only(self, key: str) -> bool:
        model = model_of(self.lab.config.model)
        if model is None or not model.sigchld_controls:
            fork = SIGCHLD_MODEL
            self.notify(
                f"{key}: only the {fork.name} model handles SIGCHLD (press {fork.key} for {fork.name})",
                severity="warning",
            )
            return False
        return True

    # -- actions ---------------------------------------------------------------------

    def action_add_clients(self, count: int) -> None:
        self._control(lambda: self.lab.add_clients(count))

    def action_blast(self) -> None:
        self._control(lambda: self.lab.blast(100))

    def action_half_close(self) -> None:
        """Like `echo discard | nc`: one question, then shutdown(SHUT_WR); the client waits for EOF."""
        self._control(lambda: self.lab.add_clients(1, kind="half-close"))

    def action_close_client(self) -> None:
        selected = self.query_one(ClientsPanel).selected_id
        view = next((c for c in (self.latest.clients if self.latest else ()) if c.id == selected), None)
        if view is None:  # none drawn yet (c was just pressed): the lab closes its newest open client
            self._control(self.lab.close_client)
        elif not view.open:
            self.notify(f"#{view.id} already ended ({view.state}): end selects the newest open client")
        else:
            self._control(lambda: self.lab.close_client(selected))

    def action_clear_finished(self) -> None:
        self._control(self.lab.forget_finished_clients)

    def action_lesson(self) -> None:
        self.push_screen(self.query_one(LessonPanel).full_screen())

    def action_close_all(self) -> None:
        self._control(self.lab.close_all_clients)

    def action_send_line(self) -> None:
        panel = self.query_one(ClientsPanel)
        open_ids = [c.id for c in (self.latest.clients if self.latest else ()) if c.open]
        client_id = panel.selected_id if panel.selected_id in open_ids else max(open_ids, default=None)
        if client_id is None:
            self.notify("no open client: press c first", severity="warning")
            return

        def send(text: str | None) -> None:
            if text is not None:
                self._control(lambda: self.lab.send_line(client_id, text))

        self.push_screen(SendLine(client_id), send)

    def action_switch(self, name: str) -> None:
        self._control(lambda: self.lab.switch_model(name))

    def action_pick_model(self) -> None:
        def picked(name: str | None) -> None:
            if name:
                self.action_switch(name)

        self.push_screen(ModelPicker(self.lab.config.model), picked)

    def action_sigchld(self) -> None:
        if self._fork_only("s"):
            self._control(self.lab.cycle_sigchld)

    def action_reap(self) -> None:
        if self._fork_only("w"):
            self._control(self.lab.reap_now)

    def action_close_fd(self) -> None:
        # Leaking, the server gets a small fd table, so EMFILE comes after a few clients.
        leak = self.lab.config.close_fd
        self._control(lambda: self.lab.restart(close_fd=not leak, max_fds=LEAK_FD_LIMIT if leak else None))

    def action_backlog(self, step: int) -> None:
        self._control(lambda: self.lab.restart(backlog=max(0, self.lab.config.backlog + step)))

    def action_restart(self) -> None:
        self._control(self.lab.restart)

    def action_kill(self) -> None:
        self._control(self.lab.kill_server)

    def action_code(self) -> None:
        """The code beside the server panel, whose rows say who waits where: the picture
        hides that panel (and would leave the code a third of the width), so it makes
        way while the code is shown and comes back after."""
        code = self.query_one(CodePanel)
        showing = not code.display
        if showing:
            self._picture_before_code, self.picture = self.picture, False
        elif self._picture_before_code:
            self.picture = picture_fits(*self.size)
        code.show(showing)

    def action_syscall_lines(self) -> None:
        events = self.query_one(EventsPanel)
        events.show_syscalls = not events.show_syscalls

    def action_trace(self) -> None:
        """The server tree's system calls, or off again: strace on the lab's models; the
        kernel's tracepoints on a watched server when root (it is never stopped)."""

        async def toggle() -> None:
            if self._trace is not None:
                kernel = self._trace.kernel
                await self._stop_trace()
                self.notify("tracing off: " + ("the kernel's tracepoints removed" if kernel else "strace detached"))
                return
            from svcviz.tui.tracing import SyscallTrace, TraceError

            pid = self.lab.server_pid
            if not isinstance(pid, int):  # no server yet, or a replay's lab (which refuses every call)
                self.notify("t: no live server process to trace", severity="warning")
                return
            kernel = self.watching and os.geteuid() == 0
            trace = SyscallTrace(pid, ended=lambda why: self.run_worker(self._trace_ended(trace, why)), kernel=kernel)
            try:
                await trace.start()
            except TraceError as exc:
                self.notify(f"t: {plain(str(exc))}", severity="error", markup=False)
                return
            self._trace = trace
            self._trace_timer = self.set_interval(0.1, self._take_calls)
            how = (
                "with the kernel's tracepoints (the server is not slowed; calls and fds, not the bytes)"
                if trace.kernel
                else f"with strace ({plain(trace.kernel_refused)})"
                if trace.kernel_refused
                else "with strace"
            )
            self.notify(
                f"tracing pid {pid} and its children {how}: their calls join the log (t stops, y hides them)",
                markup=False,
            )

        self._control(toggle)

    def _take_calls(self) -> None:
        from svcviz.tui.tracing import KEEP as TRACE_KEEP
        from svcviz.tui.tracing import as_event

        calls = self._trace.take() if self._trace is not None else []
        if calls:
            self.syscall_log = (*self.syscall_log, *(as_event(call) for call in calls))[-TRACE_KEEP:]
            self.query_one(CodePanel).flash(calls)

    async def _trace_ended(self, trace: SyscallTrace, why: str) -> None:
        if self._trace is trace:
            await self._stop_trace()
            self.notify(why, severity="warning")

    async def _stop_trace(self) -> None:
        trace, self._trace = self._trace, None
        if trace is not None:
            self._trace_timer.stop()
            await trace.stop()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.past.back:
            self._show_past(self.past.back)  # forward to the newest sample, then on live
        (self.lab.pause if self.paused else self.lab.resume)()

    def watch_picture(self, on: bool) -> None:
        self.screen.set_class(on, "picture")
        if on:
            self.query_one(PicturePanel).watch_latest(self.latest)  # laid out while hidden: never

    def action_toggle_picture(self) -> None:
        width, height = self.size
        if not self.picture and not picture_fits(width, height):
            self.notify(picture_too_small(width, height), severity="warning")
            return
        self.picture = not self.picture

    def action_pipes(self) -> None:
        from svcviz.tui.screens.pipes import PipeScreen  # the scenarios' pipelines with it

        self.push_screen(PipeScreen())

    def action_evidence(self) -> None:
        self.query_one(ServerPanel).action_toggle_evidence()

    def action_step(self, samples: int) -> None:
        if not self.paused or len(self.screen_stack) > 1:
            raise SkipAction()  # live, or a dialog open: the key is the focused widget's
        self._show_past(samples)

    def _show_past(self, samples: int) -> None:
        if not self.past.back:
            self._log_now = self.event_log
        shown = self.past.step(samples)
        if shown is None:
            return
        self.latest = shown
        self.event_log = tuple(e for e in self._log_now if e.time <= shown.snapshot.time)
        self.moment = f"paused: showing {self.past.ago():.1f} s ago" if self.past.back else ""

    def action_save_svg(self) -> None:
        """S: the screen as an SVG file (a handout), named in the event log."""
        name = time.strftime("svcviz-%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}.svg"
        try:
            path = os.path.abspath(self.save_screenshot(filename=name, path=self.svg_dir))
        except OSError as exc:
            self.notify(f"cannot save the screen: {plain(exc.strerror or str(exc))}", severity="error", markup=False)
            return
        self.event_log = (*self.event_log, Event(time.time(), "server", f"screen saved as {path}"))[-KEEP:]
        self.notify(f"screen saved as {plain(path)}", markup=False)

    def action_help(self) -> None:
        shown = [b for b in self.BINDINGS if not (self.watching and b.action.split("(")[0] in SERVER_ACTIONS)]
        self.push_screen(HelpScreen(shown, self.watching))

    async def action_quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        async with self._control_lock:
            await self._stop_trace()
            await self.lab.stop()
        self.exit(0)

    async def _hang_up(self) -> None:
        """The terminal is gone: stop the lab, then leave at once. Textual's shutdown would
        restore the terminal first, and its writes to a hung-up tty block forever."""
        self._quitting = True
        try:
            await asyncio.wait_for(self._stop_trace(), STOP_TIMEOUT)
            await asyncio.wait_for(self.lab.stop(), STOP_TIMEOUT)
        finally:
            self.lab.stop_now()
        os._exit(128 + signal.SIGHUP)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            name = binding.action.split("(")[0]
            if binding.key == "ctrl+c" or name == "quit" or (self.watching and name in SERVER_ACTIONS):
                continue
            yield SystemCommand(
                binding.description, f"key {binding.key}", lambda action=binding.action: self.run_action(action)
            )


# What changes with every sample without changing the picture: the time, and this sample's
# events (an update with events is drawn whatever else is equal).
_SNAPSHOT_FIELDS = tuple(name for name in Snapshot._fields if name != "time")
_UPDATE_FIELDS = tuple(name for name in LabUpdate._fields if name not in ("snapshot", "events"))


def _same_picture(shown: LabUpdate | None, update: LabUpdate) -> bool:
    """Whether update would draw what is on screen already: every panel bound to `latest`
    repaints when it is set (the server panel's rows were a sixth of the dashboard's CPU on
    a still lab), so an unchanged sample is not set, but once a second one is, for the
    sparklines' minute to move on. Cheap: unchanged parts are the same objects. Every field
    counts but the time and the events: a field added to either class counts by itself."""
    if shown is None or update.events or int(shown.snapshot.time) != int(update.snapshot.time):
        return False
    a, b = shown.snapshot, update.snapshot
    return all(getattr(a, name) == getattr(b, name) for name in _SNAPSHOT_FIELDS) and all(
        getattr(shown, name) == getattr(update, name) for name in _UPDATE_FIELDS
    )


def _collector_back_on() -> None:
    """After the first frame: the cyclic collector that cli.py paused for the start runs
    again, without the start's objects (frozen: they live as long as the app)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _run(app: SvcvizApp) -> int:
    try:
        app.run()
    finally:
        app.lab.stop_now()  # whatever way the app ended, the server's session goes
    if app.error:
        print(f"svcviz: {app.error}", file=sys.stderr)
        return 2
    return app.return_code or 0


def recorded(lab: Lab, path: str | None, command: str) -> LabLike | None:
    """The lab, or one recording to path; None when path cannot be written (said on stderr).
    The recorder's modules are imported only then: not by every first frame."""
    if path is None:
        return lab
    from svcviz.record.recording_lab import with_recording
    from svcviz.record.writer import RecordError

    try:
        return with_recording(lab, path)
    except RecordError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return None


def main(args: argparse.Namespace) -> int:
    """`svcviz [--model M] [--port P] ...`: start a model and open the dashboard on it."""
    if not sys.stdout.isatty() and os.environ.get("TEXTUAL_DRIVER") != WEB_DRIVER:
        print(NO_TTY, file=sys.stderr)
        return 2
    config = ServerConfig.from_args(args.model, args)
    lab = recorded(Lab(config, port_fallback=(args.port is None)), args.record, "svcviz")
    return 2 if lab is None else _run(SvcvizApp(lab, handle_signals=True))


def watch_main(args: argparse.Namespace, observer: Observer | None = None) -> int:
    """`svcviz watch --port P | --pid PID`: the dashboard on a server svcviz did not start;
    observer: one made for it already (cli.py's check of the target), taken over by the lab."""
    if not sys.stdout.isatty():
        print(NO_TTY, file=sys.stderr)
        return 2
    attached = Lab.attach(
        pid=getattr(args, "pid", None),
        port=getattr(args, "port", None),
        addr=getattr(args, "addr", None),
        netns=getattr(args, "netns", None),
        client_protocol=getattr(args, "client_protocol", None),
        observer=observer,
    )
    lab = recorded(attached, getattr(args, "record", None), "svcviz watch")
    return 2 if lab is None else _run(SvcvizApp(lab, handle_signals=True))


def replay_main(recording: Recording) -> int:
    """`svcviz replay FILE`: the dashboard fed by a recording; no server to steer."""
    if not sys.stdout.isatty():
        print(NO_TTY, file=sys.stderr)
        return 2
    from svcviz.record.player import ReplayLab
    from svcviz.tui.replay import ReplayApp  # it builds on this module's app

    return _run(ReplayApp(ReplayLab(recording), handle_signals=True))
