"""The pipeline screen (`|`) against real pipelines: what it draws is what the kernel holds
(one name for one pipe inode in every process), its keys steer the real processes, and
nothing it started outlives it, however it is left."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from textual.app import App

import svcviz.tui
from replay_lab import ReplayLab
from svcviz.observe.pipes import End, Member, Pipe, PipelineView, kind_of, look, pipe_inode
from svcviz.observe.procfs import read_io
from svcviz.procstat import read_stat
from svcviz.scenarios.pipes import alive_in_session
from svcviz.tui.app import SvcvizApp
from svcviz.tui.pipelines import is_parser
from svcviz.tui.screens.pipes import PipeScreen
from svcviz.tui.widgets.pipeline import PipelinePanel

SIZE = (150, 40)


def drawn(app: SvcvizApp) -> str:
    return app.screen.query_one(PipelinePanel).render().plain


def out(app: SvcvizApp) -> str:
    return str(app.screen.query_one("#pipe-out").render())


async def until(pilot, predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(pilot.app):
        assert time.monotonic() < deadline, f"never drawn: {what}\n{drawn(pilot.app)}\n{out(pilot.app)}"
        await pilot.pause(0.1)


def row(app: SvcvizApp, pid: int) -> str:
    return next(line for line in drawn(app).splitlines() if line.split()[:1] == [str(pid)])


def pipe_line(app: SvcvizApp, name: str) -> str:
    return next(line for line in drawn(app).splitlines() if line.startswith(name))


async def open_pipeline(pilot, key: str) -> int:
    await pilot.press("vertical_line")
    await until(pilot, lambda app: isinstance(app.screen, PipeScreen), "the pipeline screen")
    await pilot.press(key)
    await until(pilot, lambda app: app.screen.running is not None, "a pipeline started")
    return pilot.app.screen.running.sid


async def test_three_cats_drawn_on_one_pipe_a_line_waits_while_the_parser_stops():
    app = SvcvizApp(ReplayLab())
    async with app.run_test(size=SIZE) as pilot:
        sid = await open_pipeline(pilot, "4")
        cat_rows = re.compile(r"^ *\d+ +\d+  cat ", re.MULTILINE)
        await until(
            pilot, lambda app: len(cat_rows.findall(drawn(app))) == 3 and " pipe A r " in drawn(app), "the cats"
        )
        kernel = look(alive_in_session(sid))
        cats = [m for m in kernel.members if m.name == "cat"]
        parse = next(m for m in kernel.members if m.name != "bash" and m.command.endswith("svcviz parse"))
        assert {c.ends[1].pipe for c in cats} == {parse.ends[0].pipe}  # the kernel: one pipe
        for cat in cats:  # ... and the screen: the same name in each row that holds it
            assert re.search(r"feed [abc] r +pipe A w ", row(app, cat.pid)), row(app, cat.pid)
        assert " pipe A r " in row(app, parse.pid)
        assert f"inode {parse.ends[0].pipe} " in pipe_line(app, "pipe A")

        await until(pilot, lambda app: "in read(0)" in row(app, parse.pid), "the parser reading its fd 0")
        await pilot.press("z")
        await until(pilot, lambda app: "stopped" in row(app, parse.pid), "the parser stopped")
        await pilot.press("b")  # cat 2's line: 'echo\n'
        await until(pilot, lambda app: " 5 B waiting" in pipe_line(app, "pipe A"), "5 bytes waiting in pipe A")
        assert "lines out of the last stage: 0" in out(app)
        await pilot.press("z")
        await until(pilot, lambda app: "echo,7" in out(app), "cat 2's line answered")
        assert " 0 B waiting" in pipe_line(app, "pipe A")

        await pilot.press("escape")
        await until(pilot, lambda app: not isinstance(app.screen, PipeScreen), "the dashboard again")
        assert not alive_in_session(sid)


async def test_yes_fills_its_pipe_and_head_ends_the_first_pipeline():
    app = SvcvizApp(ReplayLab())
    async with app.run_test(size=SIZE) as pilot:
        sid = await open_pipeline(pilot, "2")
        await until(pilot, lambda app: " sort " in drawn(app) and "svcviz parse  " in drawn(app), "yes | parse | sort")
        parse = next(m.pid for m in look(app.screen.running.pids()).members if is_parser(m))
        await until(pilot, lambda app: (read_io(parse) or (0, 0))[1] > 0, "the parser answering (started)")
        await pilot.press("z", "z")  # stopped and continued: each press undoes the last, however quick
        await pilot.pause(0.5)
        assert read_stat(parse).state != "T"
        await pilot.press("z")
        await until(pilot, lambda app: "stopped" in row(app, parse), "the parser stopped")
        await until(pilot, lambda app: "65,536 B waiting" in pipe_line(app, "pipe A"), "yes's pipe full")
        assert "full" in pipe_line(app, "pipe A") and "lines out of the last stage: 0" in out(app)
        await pilot.press("z", "e")  # continue the parser, end yes: sort writes all it kept
        await until(pilot, lambda app: "the pipeline ended (status 0)" in out(app), "sort's output")
        assert "discard,9" in out(app) and not alive_in_session(sid)

        await pilot.press("1")
        await until(pilot, lambda app: "3; the pipeline ended (status 0)" in out(app), "head's three lines")


@pytest.mark.parametrize("leave", ["quit", "exit"])
async def test_nothing_outlives_the_dashboard(leave):
    """ctrl+c with the screen open, or the app ending some other way: the pipeline goes too."""
    app = SvcvizApp(ReplayLab())
    async with app.run_test(size=SIZE) as pilot:
        sid = await open_pipeline(pilot, "2")
        await until(pilot, lambda app: "yes discard" in drawn(app), "yes running")
        if leave == "quit":
            await pilot.press("ctrl+c")
        else:
            app.exit()
        await asyncio.sleep(0)
    deadline = time.monotonic() + 5
    while alive_in_session(sid):
        assert time.monotonic() < deadline, f"left running: {alive_in_session(sid)}"
        await asyncio.sleep(0.05)


# -- the panel's drawing, on fixed data (a snapshot: pids and inodes of a live run change) ------------

FEEDS = {9001: 0, 9002: 1, 9003: 2}
OUT, SHARED = 9004, 9005


def end(fd: int, link: str, writes: bool = False) -> End:
    return End(fd, link, kind_of(link), pipe_inode(link), writes)


def cat(pid: int, feed: int, wrote: int) -> Member:
    ends = (end(0, f"pipe:[{feed}]"), end(1, f"pipe:[{SHARED}]", True), end(2, "/dev/null"))
    return Member(pid, 3999, "cat", "cat", "S", "read(0)", (6976, wrote), ends)


SHARED_CATS = PipelineView(
    members=(
        Member(
            4000,
            3999,
            "bash",
            "bash -c (cat <&11- 13<&- 15<&- & ...) | python3 -m svcviz parse",
            "S",
            "wait4",
            (7808, 0),
            (
                end(0, "/dev/null"),
                end(1, f"pipe:[{OUT}]", True),
                end(2, "/dev/null"),
                *(end(fd, f"pipe:[{inode}]") for fd, inode in zip((11, 13, 15), FEEDS, strict=True)),
            ),
        ),
        Member(
            4002,
            4000,
            "python3",
            "python3 -m svcviz parse",
            "T",
            "",
            (1860638, 10),
            (end(0, f"pipe:[{SHARED}]"), end(1, f"pipe:[{OUT}]", True), end(2, "/dev/null")),
        ),
        cat(4003, 9001, 8),
        cat(4004, 9002, 5),
        cat(4005, 9003, 0),
    ),
    pipes=(
        Pipe(OUT, ((4000, 1), (4002, 1)), (), 0, 65536),
        *(
            Pipe(inode, (), ((4000, fd), (4003 + cat, 0)), 0, 65536)
            for inode, cat, fd in zip(FEEDS, range(3), (11, 13, 15), strict=True)
        ),
        Pipe(SHARED, ((4003, 1), (4004, 1), (4005, 1)), ((4002, 0),), 5, 65536),
    ),
)


class PanelApp(App):
    CSS_PATH = str(Path(svcviz.tui.__file__).parent / "app.tcss")

    def compose(self):
        yield PipelinePanel()

    def on_mount(self) -> None:
        panel = self.query_one(PipelinePanel)
        panel.forget(4000, FEEDS)
        panel.open_feeds = {9001, 9003}  # cat 2 has had its EOF
        panel.view = SHARED_CATS


def test_the_panel_names_one_pipe_alike_in_every_row(snap_compare):
    assert snap_compare(PanelApp(), terminal_size=(150, 16))


async def test_the_panel_text():
    async with PanelApp().run_test(size=(150, 16)) as pilot:
        text = pilot.app.query_one(PipelinePanel).render().plain
    assert text.count("pipe A w") == 3 and text.count("pipe A r") == 1  # one pipe, one name
    assert "svcviz parse                 stopped" in text
    assert "pipe A     inode 9005            5 B waiting of 65,536" in text
    assert "writers: svcviz (key a)" in text and "writers: svcviz (key b)" not in text  # b's EOF
    assert "to svcviz  inode 9004" in text and "readers: svcviz (lines out, below)" in text


def test_pipes_are_lettered_left_to_right_though_the_shell_holds_the_newest_first():
    """The moment bash forks sort, it holds parse | sort's pipe (its lowest pid sees it first)."""
    first, second = 9101, 9102
    null = end(2, "/dev/null")
    yes = Member(
        4001, 4000, "yes", "yes discard", "S", "write(1)", (0, 0), (null, end(1, f"pipe:[{first}]", True), null)
    )
    parse = Member(
        4002, 4000, "python3", "python3 -m svcviz parse", "R", "", (0, 0),
        (end(0, f"pipe:[{first}]"), end(1, f"pipe:[{second}]", True), null),
    )  # fmt: skip
    shell = Member(4000, 3999, "bash", "bash -c ...", "R", "", (0, 0), (null, null, null, end(5, f"pipe:[{second}]")))
    view = PipelineView(
        (shell, yes, parse),
        (Pipe(second, ((4002, 1),), ((4000, 5),), 0, 65536), Pipe(first, ((4001, 1),), ((4002, 0),), 0, 65536)),
    )
    panel = PipelinePanel()
    panel.forget(4000, {})
    assert sorted(view.pipes, key=panel.pipeline_order)[0].inode == first
    assert [panel.name_of(p.inode, shell) for p in sorted(view.pipes, key=panel.pipeline_order)] == ["pipe A", "pipe B"]
