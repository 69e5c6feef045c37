"""The server panel hides no process: identical threads grouped with a count, each group's
wait, a long tree scrolled; hand-made snapshots through the app's own path (ReplayLab)."""

from __future__ import annotations

import time

from big_servers import PORT, SERVER, many_processes, prefork_threads, threads_200
from replay_lab import ReplayLab, drawn_after
from svcviz.lab import LabUpdate
from svcviz.observe.snapshot import Connection, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.tui.app import SvcvizApp
from svcviz.tui.widgets import ListenPanel, ServerPanel
from svcviz.tui.widgets.server import fd_badges, group_line, process_line, thread_groups

SIZE = (160, 45)


def on_screen(app) -> list[str]:
    """The panel's rows as drawn now: what a person sees, scrolled as it is."""
    panel = app.query_one(ServerPanel)
    return [panel.render_line(y).text.rstrip() for y in range(panel.scrollable_content_region.height)]


async def settled(pilot, predicate, what: str, timeout: float = 5.0) -> None:
    """Scrolling may animate: wait for it, bounded."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"never scrolled to {what}"
        await pilot.pause(0.05)


async def test_a_4x30_prefork_server_shows_every_worker_at_160x45():
    update = prefork_threads()
    app = SvcvizApp(ReplayLab(controls_server=False))
    async with app.run_test(size=SIZE) as pilot:
        await drawn_after(pilot, app.lab, update)
        rows = on_screen(app)
        text = "\n".join(rows)
        assert "architecture: prefork+thread-pool" in rows[0]
        for worker in update.snapshot.processes[1:]:
            assert f"{worker.pid} gunicorn: worker [app:app] www-data" in text, text
        # 27 futex threads a worker in one row; the main thread's event loop; each reader alone.
        assert text.count("×27 gunicorn futex") == 4
        assert text.count("epoll_wait(5 epoll)") == 4
        assert "read(8 <- #1)" in text and "read(9 <- #8)" in text
        assert text.count(" epoll ") >= 4 and text.count(" pipe ") >= 4  # the fds that show the shape


async def test_a_200_thread_server_shows_its_process_and_every_group():
    update = threads_200()
    app = SvcvizApp(ReplayLab(controls_server=False))
    async with app.run_test(size=SIZE) as pilot:
        await drawn_after(pilot, app.lab, update)
        text = "\n".join(on_screen(app))
        assert "python3 -m http.server 8000 joe threads 200" in text
        assert "main 5000 python3 accept4(3 listen)" in text
        assert "×150 python3 recvfrom(<- conn): #1 #2 #3 #4 +146" in text
        assert "×48 python3 futex" in text
        assert "thread 5999 python3 running" in text
        assert "architecture: thread-pool" in text
        assert "150 conns  3 listen   10 #1" in text  # a count, the listener, then the first badges


async def test_the_panel_scrolls_to_every_process_by_keys():
    update = many_processes(60)
    app = SvcvizApp(ReplayLab(controls_server=False))
    async with app.run_test(size=SIZE) as pilot:
        await drawn_after(pilot, app.lab, update)
        last = update.snapshot.processes[-1].pid
        assert not any(f"└ {last} " in row for row in on_screen(app))
        app.query_one(ServerPanel).focus()
        await pilot.press("end")
        await settled(pilot, lambda: any(f"└ {last} " in row for row in on_screen(app)), "the last process")
        await pilot.press("home", "down")
        await settled(pilot, lambda: app.query_one(ServerPanel).scroll_y == 1, "one row down from the top")


async def test_a_shows_the_architecture_evidence():
    update = threads_200()
    app = SvcvizApp(ReplayLab(controls_server=False))
    async with app.run_test(size=SIZE) as pilot:
        await drawn_after(pilot, app.lab, update)
        panel = app.query_one(ServerPanel)
        assert panel.tooltip and "(a: why)" in on_screen(app)[0]
        await pilot.press("a")  # from anywhere: the clients table has the focus
        await pilot.pause()
        evidence = panel.architecture.evidence
        assert evidence and all(any(sentence[:40] in row for row in on_screen(app)) for sentence in evidence)


def test_threads_group_by_name_without_its_number_and_by_wait():
    threads = [Thread(1, "S", "redis-server", "epoll_wait", 5)]
    threads += [Thread(2 + i, "S", f"io_thd_{i + 1}", "futex") for i in range(3)]
    threads += [Thread(9, "S", "bio_close_file", "futex"), Thread(10, "S", "bio_aof", "futex")]
    process = Process(1, 0, "redis-server", "S", tuple(threads), fds=(Fd(5, "other", link="anon_inode:[eventpoll]"),))
    groups = [(len(g.threads), g.name, g.wait) for g in thread_groups(process, {})]
    assert groups == [
        (1, "redis-server", "epoll_wait(5 epoll)"),
        (3, "io_thd", "futex"),
        (1, "bio_close_file", "futex"),
        (1, "bio_aof", "futex"),
    ]


def test_a_process_with_many_connections_shows_a_count_and_the_first_badges():
    fds = tuple(Fd(10 + i, "conn", peer=f"127.0.0.1:{40000 + i}") for i in range(20))
    badges = fd_badges(Process(1, 0, "x", "S", fds=fds), {40000: 1}).plain
    assert badges.startswith("20 conns ") and " 10 #1 " in badges and "+14" in badges
    assert " 16 :40006" not in badges


def test_the_epoll_a_single_threaded_worker_waits_on_is_named_once():
    """`sleeping in epoll_wait(3 epoll)` already says the epoll: no ` epoll ` mark besides
    (an nginx worker's row at 160 columns lost its listeners to it); an epoll it does not
    wait on keeps its mark."""
    fds = (Fd(3, "other", link="anon_inode:[eventpoll]"), Fd(4, "other", link="anon_inode:[eventfd]"))
    fds += tuple(Fd(5 + i, "listen") for i in range(4))
    waiting = Process(1, 0, "nginx", "S", (Thread(1, "S", "nginx", "epoll_wait", 3),), fds=fds)
    row = process_line(waiting, 1, {}).plain
    assert "sleeping in epoll_wait(3 epoll)" in row and " epoll " not in row
    assert " eventfd " in row and " 5-8 listen " in row
    accepting = Process(1, 0, "nginx", "S", (Thread(1, "S", "nginx", "accept4", 5),), fds=fds)
    assert " epoll " in process_line(accepting, 1, {}).plain


def test_a_row_that_would_be_cut_drops_sleeping_before_its_badges():
    """`in epoll_wait(3 epoll)` says the process sleeps: where the row does not fit, that
    word goes first, so the listeners stay on screen (nginx's workers at 160 columns)."""
    fds = (Fd(3, "other", link="anon_inode:[eventpoll]"), Fd(4, "other", link="anon_inode:[eventfd]"))
    fds += tuple(Fd(5 + i, "listen") for i in range(4))
    worker = Process(7, 1, "nginx", "S", (Thread(7, "S", "nginx", "epoll_wait", 3),), fds=fds, title="nginx: worker")
    full = process_line(worker, 1, {}, width=200).plain
    assert "nginx: worker sleeping in epoll_wait(3 epoll)" in full
    narrow = process_line(worker, 1, {}, width=len(full) - 1).plain
    assert "nginx: worker in epoll_wait(3 epoll)" in narrow and narrow.rstrip().endswith("5-8 listen")
    running = Process(7, 1, "nginx", "R", (Thread(7, "R", "nginx"),), fds=fds, title="nginx: worker")
    assert "running" in process_line(running, 1, {}, width=10).plain  # nothing else to say it


def test_a_worker_count_comes_before_its_marks_and_listeners():
    """An nginx worker: epoll, eventfd, four reuseport listeners, 300 connections. The count
    is what a row cut at the panel's edge must keep."""
    fds = (Fd(3, "other", link="anon_inode:[eventpoll]"), Fd(4, "other", link="anon_inode:[eventfd]"))
    fds += tuple(Fd(5 + i, "listen") for i in range(4))
    fds += tuple(Fd(20 + i, "conn", peer=f"127.0.0.1:{40000 + i}") for i in range(300))
    badges = fd_badges(Process(1, 0, "nginx", "S", fds=fds), {}).plain
    assert badges.startswith("300 conns ") and badges.index(" epoll ") < badges.index(" 5-8 listen ")
    assert " 6 listen " not in badges  # four listeners, one badge: room for the connections
    apart = tuple(Fd(n, "listen") for n in (3, 5, 9))
    assert " 3,5,9 listen " in fd_badges(Process(1, 0, "nginx", "S", fds=apart), {}).plain


async def test_a_wide_terminal_gives_the_server_panel_the_room():
    app = SvcvizApp(ReplayLab(controls_server=False))
    async with app.run_test(size=(160, 45)) as pilot:
        await drawn_after(pilot, app.lab, threads_200())
        server, clients = app.query_one(ServerPanel), app.query_one("#clients")
        assert server.size.width > 1.4 * clients.size.width
    app = SvcvizApp(ReplayLab(controls_server=False))
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn_after(pilot, app.lab, threads_200())
        server, clients = app.query_one(ServerPanel), app.query_one("#clients")
        assert abs(server.size.width - clients.size.width) <= 2  # halves below 140 columns


def test_names_titles_and_fd_links_from_the_process_are_plain_text():
    hostile = "[bold red]\x1b[2J\u202eevil"
    fds = (Fd(7, "other", link=f"/tmp/{hostile}"),)
    threads = (Thread(1, "S", hostile, "epoll_wait", 7), Thread(2, "S", hostile, "read", 7))
    process = Process(1, 0, hostile, "S", threads, fds=fds, title=hostile, user=hostile)
    rows = [process_line(process, 0, {}), *(group_line(g, 0) for g in thread_groups(process, {}))]
    for row in rows:
        assert "\x1b" not in row.plain and "\u202e" not in row.plain
        assert "[bold red]\\x1b[2J\\u202eevil" in row.plain  # shown as it is, markup and all, never obeyed
        assert not row.spans or all(str(span.style) != "bold red" for span in row.spans)


async def test_reuseport_sockets_one_by_one_and_server_side_half_open_apart_from_knocking():
    base = prefork_threads()
    workers = (5100, 5200, 5300, 5400)
    sockets = tuple(
        ListenSocket(SERVER, PORT, queue, 511, workers[i], 3 + i, holders=workers, pollers=(workers[i],))
        for i, queue in enumerate((0, 2, 5, 1))
    )
    conns = (
        *base.snapshot.connections,
        Connection("127.0.0.1:45000", SERVER, "syn_recv", "SYN_RECV"),
        Connection("127.0.0.1:45001", SERVER, "deferred", "SYN_RECV"),
        Connection("127.0.0.1:45002", SERVER, "syn_sent", "SYN_SENT"),
    )
    snapshot = Snapshot(**{**base.snapshot._asdict(), "listen": sockets, "connections": conns})
    update = LabUpdate(**{**base._asdict(), "snapshot": snapshot})
    app = SvcvizApp(ReplayLab(controls_server=False))
    async with app.run_test(size=SIZE) as pilot:
        await drawn_after(pilot, app.lab, update)
        panel = app.query_one(ListenPanel)
        lines = panel.render().plain.splitlines()
        for i, queue in enumerate((0, 2, 5, 1)):
            assert any(
                f"accept queue: {queue}/511" in line and f"fd {3 + i}  epoll of pid {5100 + 100 * i}" in line
                for line in lines
            ), lines
        assert panel.size.height == 4 + 4  # a row per socket, the four rows, no less
        assert "half-open (SYN_RECV): :45000" in panel.render().plain
        assert "waiting for first bytes: :45001" in panel.render().plain
        assert "knocking (SYN_SENT): :45002" in panel.render().plain
        assert "reuseport" in on_screen(app)[0]
