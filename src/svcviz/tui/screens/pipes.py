"""`|`: the lecture's first half, before any socket: a pipeline's processes, each fd 0 and 1
as the pipe it is, and the bytes waiting in each pipe, four times a second.

One pipeline at a time, started by its key (1-4); leaving the screen ends it. Modal, so the
dashboard's keys (c adds a client, k kills the server...) do not act from here.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from svcviz.observe.pipes import PipelineView, look
from svcviz.plain import plain
from svcviz.tui.pipelines import CATS, LINES, RECIPES, RunningPipeline
from svcviz.tui.widgets.pipeline import FEED_NAMES, PipelinePanel

SAMPLE = 0.25  # s between two looks at the pipeline

INTRO = "\n".join(
    [
        "Pick a pipeline of the lecture:",
        *(f"  {r.key}  {r.shown}" for r in RECIPES),
        "",
        "Each row is a process of it, with its fd 0, 1 and 2; a pipe has one name and one colour",
        "wherever it is held (w: its write end, r: its read end).",
    ]
)


class PipeScreen(ModalScreen[None]):
    BINDINGS = [
        *(Binding(r.key, f"start({i})", f"Start {r.shown}", show=False) for i, r in enumerate(RECIPES)),
        *(Binding(FEED_NAMES[c], f"feed({c})", f"Type {LINES[c]!r} into cat {c + 1}", show=False) for c in range(CATS)),
        *(Binding(FEED_NAMES[c].upper(), f"end_cat({c})", f"EOF for cat {c + 1}", show=False) for c in range(CATS)),
        Binding("z", "stop_parser", "Stop/continue the parser"),
        Binding("e", "end_input", "End the input"),
        Binding("escape,q,vertical_line", "leave", "Back to the server"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running: RunningPipeline | None = None
        self._dismissed_guard = False
        self.view = PipelineView((), ())

    def compose(self) -> ComposeResult:
        yield Static(INTRO, id="pipe-title")
        yield PipelinePanel(id="pipe-panel")
        yield Static(id="pipe-out")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(SAMPLE, self._look)

    def on_unmount(self) -> None:
        if self.running is not None:  # the app quits with the screen open: nothing may outlive it
            self.running.kill_now()

    async def action_start(self, index: int) -> None:
        await self._close()
        recipe = RECIPES[index]
        running = RunningPipeline(recipe)
        await running.start()
        self.running = running
        self._dismissed_guard = False
        self.query_one(PipelinePanel).forget(running.sid, running.feeds)
        keys = "a b c type a line into cat 1, 2, 3; A B C give that cat EOF; " if recipe.cats else ""
        self.query_one("#pipe-title", Static).update(
            Text.assemble(
                (f"{recipe.key}  {recipe.shown}", "bold"),
                f"   (pid {running.sid}: the shell)\n",
                f"{keys}z stops or continues the parser; e ends the input; 1-4 another",
            )
        )
        self._look()

    def _look(self) -> None:
        running = self.running
        if running is None:
            return
        self.view = look(running.pids())
        panel = self.query_one(PipelinePanel)
        panel.open_feeds = {inode for inode, cat in running.feeds.items() if running.pipeline.feed_ends[cat] >= 0}
        panel.view = self.view
        if running.over and not self._dismissed_guard:
            # Ended by itself (head -3, the last EOF): the guard goes now, while the group's id
            # cannot have been given to another process.
            self._dismissed_guard = True
            self.run_worker(running.close())
        if running.past_limit():
            self.notify(f"{running.end_input(self.view)}: sort keeps every line it reads, so it ran a minute at most")
        ended = "" if running.returncode is None else f"; the pipeline ended (status {running.returncode})"
        out = Text(f"lines out of the last stage: {running.lines_out:,}{ended}", style="bold")
        for line in running.last_lines:
            out.append(f"\n  {plain(line)}")
        self.query_one("#pipe-out", Static).update(out)

    def _say(self, text: str) -> None:
        self.notify(plain(text), markup=False)

    def action_feed(self, cat: int) -> None:
        if self.running is not None:
            self._say(self.running.feed(cat))

    def action_end_cat(self, cat: int) -> None:
        if self.running is not None:
            self._say(self.running.end_cat(cat))

    def action_end_input(self) -> None:
        if self.running is not None:
            self._say(self.running.end_input(self.view))

    def action_stop_parser(self) -> None:
        if self.running is not None:
            self._say(self.running.stop_or_continue_parser(self.view))

    async def _close(self) -> None:
        running, self.running = self.running, None
        if running is not None:
            await running.close()

    async def action_leave(self) -> None:
        await self._close()
        self.dismiss()
