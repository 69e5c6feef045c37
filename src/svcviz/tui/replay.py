"""`svcviz replay FILE`: the dashboard on a recording, with a player's keys and a time line.

The recording's ReplayLab (svcviz.record.player) is the lab: it yields the sample at its
position each time the position moves; this app moves it (play/pause, a sample or an event
back and forth, start/end, speed) and draws the event log as it was at that sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from textual.actions import SkipAction
from textual.binding import Binding
from textual.widgets import Footer

from svcviz.record.player import NOTHING_TO_STEER, ReplayLab
from svcviz.tui.app import SvcvizApp
from svcviz.tui.messages import LabUpdated
from svcviz.tui.widgets.events import KEEP
from svcviz.tui.widgets.timeline import Timeline

REPLAY_BINDINGS = [
    Binding("space", "play", "Play/pause", priority=True),
    Binding("left", "step(-1)", "Back", priority=True),
    Binding("right", "step(1)", "Forward", priority=True),
    Binding("left_square_bracket", "event(-1)", "Previous event", key_display="["),
    Binding("right_square_bracket", "event(1)", "Next event", key_display="]"),
    Binding("home", "seek_start", "Start", show=False, priority=True),
    Binding("end", "seek_end", "End", show=False, priority=True),
    Binding("less_than_sign", "speed(-1)", "Slower", show=False, key_display="<"),
    Binding("greater_than_sign", "speed(1)", "Faster", show=False, key_display=">"),
]


class ReplayApp(SvcvizApp):
    REPLAY = True
    # The player's keys in the footer; the dashboard's stay bound (help, quit, S; the
    # steering ones say there is nothing to steer) but leave the footer to the player's.
    BINDINGS = [
        *REPLAY_BINDINGS,
        *(
            b if b.action in ("help", "quit") else replace(b, show=False)
            for b in SvcvizApp.BINDINGS
            if b.key not in {r.key for r in REPLAY_BINDINGS}
        ),
    ]

    def __init__(self, lab: ReplayLab, *, handle_signals: bool = False, picture: bool | None = None) -> None:
        super().__init__(lab, handle_signals=handle_signals, picture=picture)
        self.lab: ReplayLab = lab
        self._index = {id(update): i for i, update in enumerate(lab.samples)}

    def on_mount(self) -> None:
        times = [(event.time - self.lab.start_time, event.kind) for event in self.lab.events]
        self.mount(Timeline(times, id="timeline"), before=self.query_one(Footer))

    def on_lab_updated(self, message: LabUpdated) -> None:
        """The sample at the player's position: the log as it stood then, not appended to."""
        message.prevent_default()  # not SvcvizApp's: it appends, and keeps a live past
        if not self.is_running:
            return
        self._unshown_events = []
        update = message.update
        index = self._index[id(update)]
        self.event_log = self.lab.log_through(index, KEEP)
        self.latest = update
        self.paused = not self.lab.playing
        elapsed = self.lab.elapsed(index)
        self.moment = f"replay {elapsed:.1f} / {self.lab.duration:.1f} s"
        for timeline in self.query(Timeline):
            timeline.position, timeline.duration = elapsed, self.lab.duration
            timeline.playing, timeline.speed = self.lab.playing, self.lab.speed

    @property
    def index(self) -> int:
        """The position of the sample on the screen."""
        return self._index[id(self.latest)] if self.latest is not None else -1

    def _move(self, move: Callable[[], None]) -> None:
        if len(self.screen_stack) > 1:
            raise SkipAction()  # a dialog is open: the key is its own
        move()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True  # every key answers: a server's own ones say there is none to steer

    def _nothing_to_steer(self, *args: object, **kwargs: object) -> None:  # whatever the action's arguments
        self.notify(NOTHING_TO_STEER, severity="warning")

    # The keys that steer the server (SERVER_ACTIONS): the model picker does not even open.
    action_switch = action_pick_model = action_sigchld = action_close_fd = _nothing_to_steer
    action_reap = action_backlog = action_restart = action_kill = _nothing_to_steer

    def action_play(self) -> None:
        self._move(self.lab.toggle_play)

    def action_pause(self) -> None:
        self._move(self.lab.toggle_play)

    def action_step(self, samples: int) -> None:
        self._move(lambda: self.lab.step(samples))

    def action_event(self, direction: int) -> None:
        self._move(lambda: self.lab.step_event(direction))

    def action_seek_start(self) -> None:
        self._move(lambda: self.lab.seek(0))

    def action_seek_end(self) -> None:
        self._move(lambda: self.lab.seek(len(self.lab.samples) - 1))

    def action_speed(self, step: int) -> None:
        self._move(lambda: self.lab.change_speed(step))
