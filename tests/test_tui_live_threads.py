"""The dashboard on a real threaded server: Python's ThreadingHTTPServer holding 50 raw
clients, a thread each; at 160x45 every thread group is on screen, and together the groups
count every thread /proc lists."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from realservers import free_port, running
from svcviz.lab import Lab
from svcviz.tui.app import SvcvizApp
from svcviz.tui.widgets import ServerPanel
from svcviz.tui.widgets.server import ThreadGroup

CLIENTS = 50
BATCH = 5


async def test_a_threading_http_server_with_50_clients_shows_every_thread_group(tmp_path):
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with running(argv, port, tmp_path) as server:
        app = SvcvizApp(Lab.attach(port=port, client_protocol="raw"))
        async with app.run_test(size=(160, 45)) as pilot:
            while app.latest is None:
                await pilot.pause(0.05)
            panel = app.query_one(ServerPanel)
            tasks = f"/proc/{server.pid}/task"
            # http.server listens with a backlog of 5: clients come five at a time, as its queue takes them.
            for batch in range(CLIENTS // BATCH):
                await app.lab.add_clients(BATCH)
                until = time.monotonic() + 15
                while len(os.listdir(tasks)) < 1 + BATCH * (batch + 1):
                    assert time.monotonic() < until, f"the server never took client batch {batch + 1}"
                    await pilot.pause(0.05)

            def groups() -> list[ThreadGroup]:
                return [row for _, _, row in panel.rows if isinstance(row, ThreadGroup)]

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await pilot.pause(0.1)
                held = sum(len(g.clients) for g in groups())
                if held == CLIENTS and sum(len(g.threads) for g in groups()) == len(os.listdir(tasks)):
                    break
            else:
                seen = [(g.name, g.wait, len(g.threads)) for g in groups()]
                raise AssertionError(f"never saw {CLIENTS} handler threads: {seen} of {len(os.listdir(tasks))}")
            height = panel.scrollable_content_region.height
            assert len(panel.rows) <= height, "every row fits: nothing to scroll to"
            screen = [panel.render_line(y).text for y in range(height)]
            assert any(f"×{CLIENTS} " in row and "(<- conn)" in row for row in screen), screen
            for group in groups():
                assert any(group.wait in row for row in screen), (group.wait, screen)
            assert "architecture: thread-per-connection" in screen[0]
            await app.lab.close_all_clients()
            await asyncio.sleep(0)
