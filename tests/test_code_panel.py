"""The code panel (v) and tracing (t): every model's markers against its own source, and
the panel against real labs in known states, with the pids the kernel lists."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from big_servers import threads_200
from kernel import children
from replay_lab import ReplayLab, drawn_after
from svcviz.observe.snapshot import Process, Snapshot, Thread
from svcviz.servers.registry import BY_NAME, MODELS
from svcviz.trace.strace import tracer_of
from svcviz.tui import source
from svcviz.tui.app import SvcvizApp
from svcviz.tui.widgets import EventsPanel
from svcviz.tui.widgets.code import CodePanel
from test_tui_keys import dashboard, until

# What the code on a marked line must call for the marker to be true.
CALLS_ON_LINE = {
    "accept": r"\.accept(_peer)?\(",
    "read": r"\.recv\(",
    "write": r"\.send(all)?\(",
    "poll": r"\.select\(",
    "wait": r"os\.wait(pid)?\(",
    "clone": r"os\.fork\(\)|\.start\(\)",
    "sleep": r"sleep\(|wait_for_room\(\)",
    "sigwait": r"wait_for_room\(\)",
    "pause": r"signal\.pause\(\)",
    "exit": r"os\._exit\(",
    "close": r"\.close\(\)",
}


def code_of(line: source.Line) -> str:
    return line.text.split("#", 1)[0]


@pytest.mark.parametrize("model", [m.name for m in MODELS])
def test_each_marker_sits_on_the_call_it_names(model):
    sections = source.document(BY_NAME[model].module)
    marks = source.marked_lines(sections)
    assert marks, f"{model} marks no line"
    assert set(CALLS_ON_LINE) == set(source.CALLS)
    for s, _, line in marks:
        for word in line.words:
            assert word in source.CALLS, f"{sections[s].title}:{line.number}: unknown marker {word!r}"
            assert re.search(CALLS_ON_LINE[word], code_of(line)), f"{sections[s].title}:{line.number}: {line.text!r}"
    # Every call names one line for the main thread and one for the others: never two.
    for word in source.CALLS:
        for main_only in (True, False):
            same = [line for _, _, line in marks if word in line.words and line.main_only == main_only]
            assert len(same) <= 1, f"{model}: {word} marked on {[line.number for line in same]}"
    # The lines are the installed source, numbered as in the file.
    for section in sections:
        path = source.Path(BY_NAME[model].module.__file__).parents[1] / section.path.removeprefix("svcviz/")
        text = path.read_text().splitlines()
        assert all(text[line.number - 1] == line.text for line in section.lines)


def test_every_serving_model_marks_where_it_accepts_and_reads():
    for model in MODELS:
        if model.name == "listen-only":
            continue
        sections = source.document(model.module)
        assert source.line_for(sections, "accept", main=True), model.name
        assert source.line_for(sections, "read", main=False), model.name


def test_the_fork_model_shows_the_lectures_fork_itself():
    own = [line.text.strip() for line in source.document(BY_NAME["fork"].module)[0].lines]
    for expected in ("pid = os.fork()  # syscall: clone", "if pid == 0:", "os._exit(0)  # syscall: exit"):
        assert any(line.startswith(expected) for line in own), expected
    prefork = [line.text.strip() for line in source.document(BY_NAME["prefork"].module)[0].lines]
    assert any(line.startswith("pid = os.fork()") for line in prefork)


def test_place_puts_each_thread_on_its_calls_line():
    sections = source.document(BY_NAME["fork"].module)
    snapshot = Snapshot(
        time=0.0,
        root_pid=100,
        processes=(
            Process(100, 1, "svcviz", "S", (Thread(100, "S", syscall="accept4", syscall_fd=3),)),
            Process(101, 100, "svcviz", "S", (Thread(101, "S", syscall="recvfrom", syscall_fd=4),)),
            Process(102, 100, "svcviz", "Z"),
            Process(103, 100, "svcviz", "S", (Thread(103, "S", syscall="futex"),)),
            Process(104, 100, "svcviz", "R", (Thread(104, "R"),)),
        ),
    )
    placed = source.place(sections, snapshot)
    texts = {sections[s].lines[i].text.strip(): [h.tid for h in here] for (s, i), here in placed.at.items()}
    assert texts["cfd = acceptor.accept(fd)  # syscall: accept"] == [100]
    assert texts["while data := conn.recv(65536):  # syscall: read"] == [101]
    assert texts["os._exit(0)  # syscall: exit"] == [102]
    assert placed.elsewhere == ((103, "futex"), (104, "running"))
    # The parent waiting for SIGCHLD at the process cap is on its own line, a child's --delay on handle_connection's.
    sleeping = Snapshot(
        time=0.0,
        root_pid=100,
        processes=(
            Process(100, 1, "svcviz", "S", (Thread(100, "S", syscall="rt_sigtimedwait"),)),
            Process(101, 100, "svcviz", "S", (Thread(101, "S", syscall="clock_nanosleep"),)),
        ),
    )
    texts = {
        sections[s].lines[i].text.strip(): [h.tid for h in here]
        for (s, i), here in source.place(sections, sleeping).at.items()
    }
    assert texts["children.wait_for_room()  # syscall: sigwait (main)"] == [100]
    assert texts["time.sleep(delay)  # syscall: sleep"] == [101]


# -- the panel on real labs ------------------------------------------------------------


def mark_on(app, fragment: str) -> str | None:
    """The `<- ...` drawn on the first line of the panel whose code contains fragment."""
    panel = app.query_one(CodePanel)
    for index, row in enumerate(panel.rows):
        if isinstance(row, tuple) and fragment in panel.sections[row[0]].lines[row[1]].text:
            drawn = panel.line_text(index, 200).plain
            return drawn.split(" <- ", 1)[1].strip() if " <- " in drawn else ""
    raise AssertionError(f"no line with {fragment!r}")


def pids(*numbers: int) -> str:
    return " ".join(str(n) for n in sorted(numbers))


async def shown_code(pilot):
    await pilot.pause(0.5)  # samples drawn while hidden: v must place and scroll to the newest at once
    await pilot.press("v")
    await until(pilot, lambda a: a.query_one(CodePanel).display and a.query_one(CodePanel).sections, what="the code")


async def test_serial_idle_waits_in_accept_then_serving_one_in_read():
    async with dashboard("serial") as pilot:
        app = pilot.app
        await shown_code(pilot)
        server = app.lab.server_pid
        await until(pilot, lambda a: mark_on(a, "cfd = acceptor.accept(fd)") == pids(server), what="accept marked")
        assert mark_on(app, "conn.recv(") == ""
        await pilot.press("c")
        await until(pilot, lambda a: mark_on(a, "conn.recv(") == pids(server), what="the server in read")
        assert mark_on(app, "cfd = acceptor.accept(fd)") == ""


async def test_fork_with_one_child_parent_in_accept_child_in_read():
    async with dashboard("fork") as pilot:
        app = pilot.app
        await shown_code(pilot)
        await pilot.press("c")
        server = app.lab.server_pid
        child = await until(pilot, lambda a: list(children(server)), what="a forked child")
        await until(pilot, lambda a: mark_on(a, "conn.recv(") == pids(*child), what="the child in read")
        await until(pilot, lambda a: mark_on(a, "cfd = acceptor.accept(fd)") == pids(server), what="parent in accept")
        # The model's own line that calls handle_connection says the child is in there.
        assert mark_on(app, "handle_connection(cfd, config.delay)") == f"{pids(*child)} in handle_connection"


async def test_thread_with_two_clients_two_threads_in_read():
    async with dashboard("thread") as pilot:
        app = pilot.app
        await shown_code(pilot)
        await pilot.press("c", "c")
        server = app.lab.server_pid

        def workers(_):
            tids = [int(t) for t in os.listdir(f"/proc/{server}/task") if int(t) != server]
            return tids if len(tids) == 2 else None

        tids = await until(pilot, workers, what="two threads")
        await until(pilot, lambda a: mark_on(a, "conn.recv(") == pids(*tids), what="both threads in read")
        assert mark_on(app, "acceptor.accept_peer(fd)") == pids(server)


async def test_event_with_five_clients_one_thread_in_epoll():
    async with dashboard("event") as pilot:
        app = pilot.app
        await shown_code(pilot)
        for _ in range(5):
            await pilot.press("c")
        await until(pilot, lambda a: sum(c.state in ("served", "idle") for c in a.latest.clients) == 5, what="5 served")
        server = app.lab.server_pid
        await until(pilot, lambda a: mark_on(a, "self.selector.select(timeout)") == pids(server), what="epoll marked")


async def test_watch_mode_has_no_source_and_lists_waits(serve):
    server = serve("threadpool", "--workers", "2")
    async with dashboard("watch", watch_port=server.port) as pilot:
        await pilot.press("v")
        panel = pilot.app.query_one(CodePanel)
        await until(pilot, lambda a: any("accept" in r.plain for r in panel.rows), what="the waits")
        text = "\n".join(r.plain for r in panel.rows)
        assert "no source" in text
        assert re.search(r"accept4?\(\d+ listen\): (\d+ ?){2}", text), text


# -- tracing ---------------------------------------------------------------------------

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt install strace)")


def traced(app) -> list[str]:
    return [event.text for event in app.syscall_log]


@needs_strace
async def test_t_traces_the_fork_model_into_the_log_and_off_detaches():
    async with dashboard("fork") as pilot:
        app = pilot.app
        server = app.lab.server_pid
        await pilot.press("t")
        await until(pilot, lambda a: a._trace is not None, what="tracing on")
        assert tracer_of(server) not in (0, None)
        await pilot.press("c")
        await until(pilot, lambda a: any(" accept4(" in t for t in traced(a)), what="accept4 traced")
        await until(pilot, lambda a: any(re.match(rf"{server} clone\(\) = \d+", t) for t in traced(a)), what="clone")
        child = await until(pilot, lambda a: list(children(server)), what="a child")
        await pilot.press("enter")
        await pilot.press(*"discard", "enter")
        await until(
            pilot, lambda a: any(re.match(rf"{child[0]} recvfrom\(", t) for t in traced(a)), what="child's read"
        )
        # The syscall lines are in the log panel, dimmed; y hides them, y shows them again.
        events = app.query_one(EventsPanel)
        assert "recvfrom(" in events.render().plain
        await pilot.press("y")
        await until(pilot, lambda a: "recvfrom(" not in events.render().plain, what="syscalls hidden")
        await pilot.press("y")
        # Off: strace detaches from every process of the tree.
        tree = [server, *children(server)]
        await pilot.press("t")
        await until(pilot, lambda a: a._trace is None, what="tracing off")
        assert [tracer_of(pid) for pid in tree] == [0] * len(tree)


@needs_strace
async def test_quitting_while_tracing_leaves_nothing_attached():
    async with dashboard("serial") as pilot:
        app = pilot.app
        server = app.lab.server_pid
        await pilot.press("t")
        await until(pilot, lambda a: a._trace is not None, what="tracing on")
        strace = tracer_of(server)
        assert strace
        await app.action_quit()
        assert tracer_of(server) in (0, None)  # detached, or the server is gone with the lab
        assert not os.path.exists(f"/proc/{strace}") or open(f"/proc/{strace}/stat").read().split()[2] == "Z"


@pytest.mark.skipif(os.geteuid() != 0, reason="the kernel's tracepoints need root (tracefs)")
async def test_t_on_a_watched_server_uses_the_kernels_tracepoints_and_removes_them(serve):
    """A server svcviz did not start may be serving for real: t does not stop it (no
    strace attached), its calls come from a tracefs instance, gone again after t."""
    from svcviz.trace.kernel import PREFIX, tracefs

    def instances() -> set[str]:
        return {e.name for e in (tracefs() / "instances").iterdir() if e.name.startswith(PREFIX)}

    server = serve("fork", "--sigchld", "reap")
    before = instances()
    async with dashboard("watch", watch_port=server.port) as pilot:
        app = pilot.app
        await pilot.press("t")
        await until(pilot, lambda a: a._trace is not None, what="tracing on")
        assert app._trace.kernel and tracer_of(server.pid) == 0  # nothing attached to the server
        assert len(instances() - before) == 1
        await pilot.press("c")
        await until(
            pilot, lambda a: any(re.match(rf"{server.pid} accept4\(3\) = \d+", t) for t in traced(a)), what="accept4"
        )
        await until(
            pilot, lambda a: any(re.match(rf"{server.pid} clone\(\) = \d+", t) for t in traced(a)), what="clone"
        )
        await pilot.press("t")
        await until(pilot, lambda a: a._trace is None, what="tracing off")
        assert instances() == before
        assert any("the kernel's tracepoints removed" in str(n.message) for n in app._notifications)


@needs_strace
@pytest.mark.skipif(os.geteuid() != 0, reason="the kernel's tracepoints are tried only as root")
async def test_t_on_a_watched_server_without_tracefs_falls_back_to_strace_saying_why(serve, monkeypatch):
    from svcviz.trace.strace import TraceError

    def no_tracefs():
        raise TraceError("tracefs is not available: mount: [permission denied]")

    monkeypatch.setattr("svcviz.trace.kernel.tracefs", no_tracefs)
    server = serve("serial")
    async with dashboard("watch", watch_port=server.port) as pilot:
        await pilot.press("t")
        await until(pilot, lambda a: a._trace is not None, what="tracing on")
        assert not pilot.app._trace.kernel and tracer_of(server.pid) not in (0, None)  # strace stood in
        said = [str(n.message) for n in pilot.app._notifications]
        assert any("with strace (tracefs is not available: mount: [permission denied])" in m for m in said), said
        await pilot.press("t")
        await until(pilot, lambda a: a._trace is None, what="tracing off")
        assert tracer_of(server.pid) == 0


async def test_t_without_strace_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr("svcviz.trace.strace.shutil.which", lambda name: None)
    async with dashboard("serial") as pilot:
        await pilot.press("t")
        await until(
            pilot,
            lambda a: any("apt install strace" in str(n.message) for n in a._notifications),
            what="the install hint",
        )
        assert pilot.app._trace is None


async def test_v_puts_the_code_beside_the_server_panel_and_gives_the_picture_back():
    app = SvcvizApp(ReplayLab(), picture=True)
    async with app.run_test(size=(160, 45)) as pilot:
        await drawn_after(pilot, app.lab, threads_200())
        assert app.picture and not app.query_one("#left").display  # the server panel is in #left
        await pilot.press("v")
        await pilot.pause()
        assert app.query_one(CodePanel).display and not app.picture and app.query_one("#left").display
        await pilot.press("v")
        await pilot.pause()
        assert not app.query_one(CodePanel).display and app.picture
