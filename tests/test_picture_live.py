"""The picture of a real lab: a fork server with --leak-fd, three real clients, the
kernel's view laid out. A student should see the parent's box holding a line to every
client, beside the child that serves it."""

from __future__ import annotations

import asyncio
import time

from svcviz.lab import Lab
from svcviz.picture import draw, layout, picture_to_svg
from svcviz.servers.config import ServerConfig


async def test_leaked_fds_join_every_client_to_the_parent():
    lab = Lab(ServerConfig(model="fork", port=0, close_fd=False))
    await lab.start()
    try:
        await lab.add_clients(3)
        deadline = time.monotonic() + 10
        while True:
            update = await lab.sample()
            root = update.snapshot.process(update.server_pid)
            held = [fd for fd in (root.fds if root else ()) if fd.kind == "conn"]
            if len(held) == 3 and len(update.snapshot.processes) == 4:
                break
            assert time.monotonic() < deadline, "the parent never held three connections"
            await asyncio.sleep(0.05)
        picture = layout(update.snapshot, update.clients, 118, 32, "fork")
        parent = f"proc:{update.server_pid}"
        children = {f"proc:{p.pid}" for p in update.snapshot.processes if p.pid != update.server_pid}
        for client in update.clients:
            joined = picture.joined(f"client:{client.id}")
            assert parent in joined, (client, joined)
            assert joined & children, (client, joined)  # and the child that serves it
        conn_rows = [r.text for r in picture.box(parent).rows if r.kind == "conn"]
        assert sorted(text.split("← ")[1] for text in conn_rows) == sorted(f"#{c.id}" for c in update.clients)
        assert len(draw(picture)) == 32 and picture_to_svg(picture).startswith("<svg")
    finally:
        await lab.stop()
