"""Every key of the dashboard against a real lab: real servers on free ports, real
clients, the kernel's view; each test checks the lab's state and what is drawn."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager

import pytest

from kernel import children, listen_queue
from svcviz.lab import Lab, session_pids
from svcviz.procstat import read_stat
from svcviz.servers.config import ServerConfig
from svcviz.tui.app import SvcvizApp
from svcviz.tui.screens import HelpScreen, ModelPicker, SendLine
from svcviz.tui.widgets import ClientsPanel, EventsPanel, LabHeader, ListenPanel, ServerPanel
from svcviz.tui.widgets.clients import ClientTable

SIZE = (120, 40)


def drawn(app: SvcvizApp, widget_type) -> str:
    if widget_type is ClientsPanel:  # a table: its rows, a line each
        table = app.query_one(ClientTable)
        return "\n".join(" ".join(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count))
    if widget_type is ServerPanel:  # a virtual list: every row, as it draws them
        panel = app.query_one(ServerPanel)
        return "\n".join(panel.render_line(y).text.rstrip() for y in range(len(panel.rows)))
    return app.query_one(widget_type).render().plain


async def until(pilot, predicate, timeout: float = 10.0, what: str = "the expected screen"):
    """Let the app run until predicate(app) holds; fail naming what never showed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        value = predicate(pilot.app)
        if value:
            return value
    raise AssertionError(f"never saw {what}; header: {drawn(pilot.app, LabHeader)!r}")


@asynccontextmanager
async def dashboard(model: str, *, watch_port: int | None = None, **options):
    """The app on a real lab, run headless (in the test's own context, as Textual wants);
    the lab is stopped however the test ends."""
    if watch_port is None:
        lab = Lab(ServerConfig(model=model, port=0, **options), port_fallback=False)
        app = SvcvizApp(lab, picture=False)
    else:
        lab = Lab.attach(port=watch_port)
        app = SvcvizApp(lab, picture=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda a: a.latest is not None, what="a first sample")
            yield pilot
    finally:
        if lab.status != "stopped":
            await lab.stop()


def clients_in(app, *states) -> list:
    return [c for c in app.latest.clients if c.state in states] if app.latest else []


async def test_c_adds_clients_served_then_waiting_in_the_accept_queue():
    async with dashboard("serial") as pilot:
        app = pilot.app
        for _ in range(3):
            await pilot.press("c")
        await until(pilot, lambda a: "accept queue: 2/8" in drawn(a, ListenPanel), what="accept queue: 2/8")
        assert listen_queue(app.lab.port) == (2, 8)  # the kernel agrees with the screen
        # The clients cannot tell accepted from queued; the kernel can, and the panel says which.
        text = await until(
            pilot,
            lambda a: (t := drawn(a, ClientsPanel)).count("in the accept queue") == 2 and t,
            what="two clients in the accept queue",
        )
        assert text.count(f"→ pid {app.lab.server_pid} fd") == 1


async def test_digit_switches_model_and_header_follows():
    async with dashboard("fork") as pilot:
        await pilot.press("4")
        await until(
            pilot,
            # running: the serial server is listening, not just asked for
            lambda a: (
                a.lab.config.model == "serial" and a.lab.status == "running" and " serial " in drawn(a, LabHeader)
            ),
            what="serial in the header",
        )
        assert listen_queue(pilot.app.lab.port) == (0, 8)


def serves(pid: int) -> bool:
    """Whether pid runs `svcviz serve` (a model server the lab started)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"\0serve\0" in f.read()
    except OSError:
        return False


class SlowStartLab(Lab):
    """A lab on a loaded machine: its first server takes a while to come up, and the screen is
    drawn (keys taken) long before it."""

    async def start(self) -> None:
        await asyncio.sleep(0.5)
        await super().start()


@pytest.mark.parametrize("pressed_after", [0.0, 0.3, 0.6])  # before the first server spawns, during, after
async def test_a_model_key_pressed_while_the_first_server_starts_waits_for_it(pressed_after):
    """Seen at 80x24 under load: `5` pressed as the dashboard appeared stopped the serial server
    mid-start (the app then exited on `serial did not start`, or on a TargetError), or ran a
    fork server beside a second, untracked one."""
    lab = SlowStartLab(ServerConfig(model="serial", port=0), port_fallback=False)
    app = SvcvizApp(lab, picture=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(pressed_after)
            await pilot.press("5")
            await until(
                pilot, lambda a: a.lab.config.model == "fork" and a.lab.status == "running", what="the fork server"
            )
            await pilot.pause(0.5)  # anything still starting would be up by now
            assert app.is_running and app.error is None
            servers = [pid for pid, state in children(os.getpid()).items() if state != "Z" and serves(pid)]
            assert servers == [lab.server_pid], servers  # one server, the one the header names
            assert f" fork  127.0.0.1:{lab.port}  pid {lab.server_pid} " in drawn(app, LabHeader)
    finally:
        await lab.stop()


async def test_fork_zombie_reaped_by_w_and_none_after_s_to_ignore():
    async with dashboard("fork") as pilot:
        app = pilot.app
        await pilot.press("c")
        await until(pilot, lambda a: len(a.latest.snapshot.processes) == 2, what="a child")
        await pilot.press("x")
        await until(pilot, lambda a: "zombie" in drawn(a, ServerPanel), what="a zombie")
        assert "Z" in children(app.lab.server_pid).values()
        await pilot.press("w")
        await until(pilot, lambda a: "zombie" not in drawn(a, ServerPanel), what="the zombie reaped")
        await pilot.press("s")
        await until(pilot, lambda a: "SIGCHLD: ignore" in drawn(a, LabHeader), what="SIGCHLD: ignore")
        await pilot.press("c")
        await until(pilot, lambda a: len(a.latest.snapshot.processes) == 2, what="a child")
        await pilot.press("x")
        await until(pilot, lambda a: len(a.latest.snapshot.processes) == 1, what="the child gone")
        assert "zombie" not in drawn(app, ServerPanel) and "Z" not in children(app.lab.server_pid).values()


async def test_k_kills_the_server_and_its_children_are_adopted():
    async with dashboard("fork") as pilot:
        app = pilot.app
        await pilot.press("c", "c")
        await until(pilot, lambda a: len(a.latest.snapshot.processes) == 3, what="two children")
        kids = {p.pid for p in app.latest.snapshot.processes if p.pid != app.lab.server_pid}
        await pilot.press("k")
        await until(pilot, lambda a: " killed " in drawn(a, LabHeader), what="killed in the header")
        await until(pilot, lambda a: drawn(a, ServerPanel).count("adopted by svcviz") == 2, what="two adopted")
        assert all(read_stat(pid).ppid == os.getpid() for pid in kids)
        await pilot.press("X")
        await until(pilot, lambda a: not any(os.path.exists(f"/proc/{pid}") for pid in kids), what="orphans reaped")


async def test_x_closes_the_selected_client_and_capital_x_all():
    async with dashboard("event") as pilot:
        app = pilot.app
        await pilot.press("C")
        await until(pilot, lambda a: len(clients_in(a, "served", "idle")) == 10, what="ten served")
        await pilot.press("up")  # the newest open client is selected; up selects the one above
        selected = app.query_one(ClientsPanel).selected_id
        assert selected == 9
        await pilot.press("x")
        await until(pilot, lambda a: next(c for c in a.latest.clients if c.id == 9).open is False)
        assert all(c.open for c in app.latest.clients if c.id != 9)
        await pilot.press("X")
        await until(pilot, lambda a: not any(c.open for c in a.latest.clients), what="all closed")
        await until(pilot, lambda a: not a.latest.snapshot.connections, what="no connection left")


async def test_enter_types_a_line_into_the_selected_client():
    async with dashboard("serial") as pilot:
        app = pilot.app
        await pilot.press("c")
        await until(pilot, lambda a: clients_in(a, "served", "idle"), what="a served client")
        await pilot.press("enter")
        assert isinstance(app.screen, SendLine)
        await pilot.press(*"discard", "enter")
        await until(pilot, lambda a: "discard,9" in drawn(a, ClientsPanel), what="the reply discard,9")


async def test_backlog_keys_restart_with_a_new_backlog():
    async with dashboard("serial") as pilot:
        app = pilot.app
        await pilot.press("plus")
        await until(
            pilot, lambda a: "backlog: 9" in drawn(a, LabHeader) and "accept queue: 0/9" in drawn(a, ListenPanel)
        )
        assert listen_queue(app.lab.port) == (0, 9)
        await pilot.press("minus", "minus")
        await until(pilot, lambda a: "accept queue: 0/7" in drawn(a, ListenPanel))
        assert listen_queue(app.lab.port) == (0, 7)


async def test_f_toggles_close_fd_and_r_restarts():
    async with dashboard("fork") as pilot:
        app = pilot.app
        first = app.lab.server_pid
        await pilot.press("f")
        await until(pilot, lambda a: "close fd in parent: no" in drawn(a, LabHeader), what="close fd in parent: no")
        assert app.lab.server_pid != first and not session_pids(first)
        second = app.lab.server_pid
        await pilot.press("r")
        await until(
            pilot, lambda a: a.lab.server_pid not in (None, second) and f"pid {a.lab.server_pid}" in drawn(a, LabHeader)
        )
        assert "close fd in parent: no" in drawn(app, LabHeader)


async def test_s_on_a_model_without_sigchld_is_refused_not_fatal():
    async with dashboard("serial") as pilot:
        pid = pilot.app.lab.server_pid
        await pilot.press("s", "w")
        await pilot.pause(0.3)
        assert pilot.app.lab.status == "running" and pilot.app.lab.server_pid == pid


async def test_p_pauses_sampling():
    async with dashboard("serial") as pilot:
        app = pilot.app
        await pilot.press("p")
        assert "paused" in drawn(app, LabHeader) and app.lab.paused
        frozen = app.latest
        await pilot.pause(0.4)
        assert app.latest is frozen
        await pilot.press("p")
        await until(pilot, lambda a: a.latest is not frozen and " live " in drawn(a, LabHeader))


async def test_m_picker_and_help_screen():
    async with dashboard("serial") as pilot:
        app = pilot.app
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("m")
        assert isinstance(app.screen, ModelPicker)
        await pilot.press("down", "enter")  # serial is highlighted; one down is fork
        await until(pilot, lambda a: a.lab.config.model == "fork" and " fork " in drawn(a, LabHeader))


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_quit_keys_stop_everything(key):
    async with dashboard("fork") as pilot:
        app = pilot.app
        await pilot.press("c", "c")
        await until(pilot, lambda a: len(a.latest.snapshot.processes) == 3)
        pid, port = app.lab.server_pid, app.lab.port
        await pilot.press(key)
        await until(pilot, lambda a: a.lab.status == "stopped", what="the lab stopped")
        assert session_pids(pid) == [] and listen_queue(port) is None


async def test_watch_mode_turns_model_keys_off_and_clients_on(serve):
    server = serve("serial")
    async with dashboard("watch", watch_port=server.port) as pilot:
        app = pilot.app
        assert app.lab.server_pid == server.pid
        await pilot.press("4", "k", "s")
        await pilot.press("c")
        await until(pilot, lambda a: clients_in(a, "served", "idle"), what="a client served by the watched server")
        assert server.proc.poll() is None and "watch mode" in drawn(app, LabHeader)


async def test_the_collector_paused_for_the_start_runs_again_after_the_first_frame(serve):
    """cli.py turns the cyclic collector off before a dashboard starts (it walked the start's
    long-lived objects ~150 times); the first frame turns it back on, or the garbage cycles
    of a long session would pile up."""
    server = serve("serial")
    gc.disable()
    try:
        async with dashboard("serial", watch_port=server.port):
            assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()  # the app froze what this process had made: pytest's objects too


async def test_busy_explicit_port_exits_2_with_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        app = SvcvizApp(Lab(ServerConfig("serial", port=busy.getsockname()[1]), port_fallback=False))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda a: a.error is not None, what="the start error")
        assert app.return_code == 2 and "already in use" in app.error and "\n" not in app.error


def test_no_tty_points_to_watch_once():
    done = subprocess.run(
        [sys.executable, "-m", "svcviz", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "svcviz watch --once" in done.stderr and len(done.stderr.strip().splitlines()) == 1


async def test_b_blasts_and_the_palette_runs_actions_by_name():
    async with dashboard("event") as pilot:
        await pilot.press("b")
        await until(pilot, lambda a: any(c.kind == "scripted" for c in a.latest.clients), what="blast clients")
        await pilot.press("ctrl+p")
        await pilot.press(*"Add ten")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(
            pilot,
            lambda a: sum(c.kind == "interactive" for c in a.latest.clients) == 10,
            what="ten clients added from the command palette",
        )


async def test_a_cap_hit_shows_a_banner():
    async with dashboard("event") as pilot:
        pilot.app.lab.fleet.cap = 5  # the fleet's own cap on open clients, made small
        await pilot.press("C")
        banner = pilot.app.query_one("#banner")
        await until(pilot, lambda a: banner.display and "cap" in str(banner.render()), what="the cap banner")


async def test_watch_of_a_port_nobody_listens_on_exits_2():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    app = SvcvizApp(Lab.attach(port=free))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda a: a.error is not None, what="the attach error")
    assert app.return_code == 2 and "\n" not in app.error


async def test_watching_a_threaded_server_lists_its_threads(serve):
    server = serve("thread")
    async with dashboard("watch", watch_port=server.port) as pilot:
        await pilot.press("c", "c")
        await until(pilot, lambda a: len(clients_in(a, "served", "idle")) == 2, what="two clients served")
        await until(pilot, lambda a: drawn(a, ServerPanel).count("· thread") == 2, what="two threads listed")
        listed = {int(line.split()[2]) for line in drawn(pilot.app, ServerPanel).splitlines() if "· thread" in line}
        assert listed == {int(tid) for tid in os.listdir(f"/proc/{server.pid}/task")} - {server.pid}


HOSTILE = "[bold red]\x1b[2J\u202eevil"
# A server that names itself with markup and terminal controls (comm and command line) and
# answers every line with them.
HOSTILE_SERVER = r"""
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, "[red]\x1b[2J\u202e!".encode(), 0, 0, 0)  # PR_SET_NAME
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
while conn.recv(1024):
    conn.sendall(sys.argv[1].encode() + b"\n")
"""


async def test_a_watched_process_cannot_write_markup_or_controls_on_the_screen():
    server = subprocess.Popen(
        [sys.executable, "-c", HOSTILE_SERVER, HOSTILE], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        port = int(server.stdout.readline())
        async with dashboard("watch", watch_port=port) as pilot:
            app = pilot.app
            await pilot.press("c")
            client = await until(pilot, lambda a: clients_in(a, "idle", "served"), what="a connected client")
            await app.lab.send_line(client[0].id, "discard")
            replied = await until(pilot, lambda a: "«" in drawn(a, ClientsPanel) and drawn(a, ClientsPanel))
            assert "«[bold red]\\x1b[2J\\u202eevil»" in replied
            header = await until(pilot, lambda a: "evil" in drawn(a, LabHeader) and drawn(a, LabHeader))
            assert "[red]\\x1b[2J\\u202e!: " in header  # its name (comm), then its command line
            assert "[bold red]\\x1b[2J\\u202eevil" in header
            screen = app.export_screenshot()
            assert "\x1b" not in screen and "\u202e" not in screen and "\x9b" not in screen
            for shown in (header, replied, drawn(app, EventsPanel)):
                assert not any(ch in shown for ch in "\x1b\u202e\x9b")
    finally:
        server.kill()
        server.wait()
        server.stdout.close()


async def test_watch_header_follows_a_server_restarted_on_its_port(serve):
    """The header kept the dead server's pid and `watching`; the panels said nobody listened."""
    first = serve("serial")
    async with dashboard("watch", watch_port=first.port) as pilot:
        assert f"pid {first.pid} " in drawn(pilot.app, LabHeader)
        first.proc.kill()
        first.proc.wait()
        second = serve("serial", "--port", str(first.port))  # the same port, on purpose
        await until(pilot, lambda a: f"pid {second.pid} " in drawn(a, LabHeader), what="the new pid in the header")
        assert "watching" in drawn(pilot.app, LabHeader)
        await until(
            pilot,
            lambda a: f"server restarted: pid {first.pid} -> {second.pid}" in drawn(a, EventsPanel),
            what="the restart event",
        )
        await until(pilot, lambda a: "accept queue: 0/8" in drawn(a, ListenPanel), what="the new listener")


# A server whose side ignores the final ACK of each handshake (TCP_DEFER_ACCEPT: the
# connection waits in SYN_RECV until data comes): its clients believe they are connected
# while it has no connection for them, as with SYN cookies and a full accept queue.
DEFERRING_SERVER = r"""
import socket
listener = socket.create_server(("127.0.0.1", 0))
listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 30)
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
while conn.recv(1024):
    conn.sendall(b"discard,9\n")
"""


async def test_a_client_the_server_side_does_not_know_is_half_open_not_connected():
    server = subprocess.Popen([sys.executable, "-c", DEFERRING_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        async with dashboard("watch", watch_port=port) as pilot:
            app = pilot.app
            await pilot.press("c")
            await until(pilot, lambda a: clients_in(a, "half-open"), what="the client shown half-open")
            assert "the server dropped its final ACK: accept queue full" in drawn(app, ClientsPanel)
            # Data completes the server's side: then the client is connected for both.
            await app.lab.send_line(clients_in(app, "half-open")[0].id, "discard")
            await until(pilot, lambda a: clients_in(a, "served"), what="the client served once the server knew it")
            assert "half-open" not in drawn(app, ClientsPanel)
    finally:
        server.kill()
        server.wait()
        server.stdout.close()


async def test_watching_a_pid_that_is_gone_says_who_listens_on_its_port_now(serve):
    first = serve("serial")
    app = SvcvizApp(Lab.attach(pid=first.pid))
    async with app.run_test(size=SIZE) as pilot:
        try:
            await until(pilot, lambda a: a.latest is not None, what="a first sample")
            first.proc.kill()
            first.proc.wait()
            second = serve("serial", "--port", str(first.port))  # the same port, on purpose
            gone = f"gone: pid {second.pid} listens on port {first.port} now"
            await until(pilot, lambda a: gone in drawn(a, ListenPanel), what="the listen panel saying so")
            assert "connections are refused" not in drawn(app, ListenPanel) and "gone" in drawn(app, LabHeader)
        finally:
            await app.lab.stop()
