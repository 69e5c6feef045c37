"""Make screenshots/MODEL.svg for each model: a real lab, real clients, keys pressed; and
screenshots/picture-MODEL.svg, the picture alone (svcviz.picture's SVG, for handouts).

Run with `make screenshots`. Each model is started on a free port, driven by the keys a
newcomer would press (its lesson's "try next"), and captured once the kernel shows the
expected state. `fork-leak-fd` is fork with --leak-fd: its picture is the lesson.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from svcviz.lab import Lab
from svcviz.picture import layout, picture_to_svg
from svcviz.servers.config import ServerConfig
from svcviz.tui.app import SvcvizApp

HERE = Path(__file__).resolve().parent
SIZE = (120, 36)
PICTURE = (118, 28)


def clients(*states: str, count: int):
    return lambda u: sum(c.state in states for c in u.clients) >= count


def processes(count: int, zombies: int = 0):
    return lambda u: len(u.snapshot.processes) == count and len(u.snapshot.zombies) == zombies


def threads(count: int):
    return lambda u: u.snapshot.thread_total == count


# model -> (keys, the state to wait for before the picture)
RUNS = {
    "listen-only": (["c", "c", "c"], lambda u: u.snapshot.queue_length == 3),
    "accept-once": (["c", "_", "c"], clients("refused", count=1)),
    "relisten": (["c", "_", "c"], clients("refused", count=1)),
    "serial": (["c", "c", "c"], lambda u: u.snapshot.queue_length == 2),
    "fork": (["c", "c", "c", "_", "x", "x"], processes(4, zombies=2)),
    "thread": (["c", "c", "c"], threads(4)),
    "prefork": (["c", "c", "c", "c", "c"], lambda u: u.snapshot.queue_length == 1),
    "threadpool": (["c", "c", "c", "c", "c"], lambda u: u.snapshot.queue_length == 1),
    "event": (["C"], clients("served", "idle", count=10)),
    "fork-leak-fd": (["c", "c", "c"], processes(4)),
}
OPTIONS = {"fork-leak-fd": {"model": "fork", "close_fd": False}}


async def shoot(name: str, keys: list[str], ready, path: Path, timeout: float = 15.0) -> None:
    options = OPTIONS.get(name, {"model": name})
    model = options["model"]
    app = SvcvizApp(Lab(ServerConfig(port=0, **options), port_fallback=False))
    async with app.run_test(size=SIZE) as pilot:
        try:
            deadline = time.monotonic() + timeout
            while app.latest is None and time.monotonic() < deadline:
                await pilot.pause(0.05)
            for key in keys:
                await (pilot.pause(0.5) if key == "_" else pilot.press(key))
            while not (app.latest and ready(app.latest)):
                if time.monotonic() > deadline:
                    raise SystemExit(f"make_screenshots: {name} never reached its state")
                await pilot.pause(0.05)
            await pilot.pause(1.0)  # a second of sparkline, and every panel drawn
            title = f"svcviz: {name.replace('fork-leak-fd', 'fork --leak-fd')}"
            path.write_text(app.export_screenshot(title=title))
            update = app.latest
            picture = layout(update.snapshot, update.clients, *PICTURE, model)
            (path.parent / f"picture-{name}.svg").write_text(picture_to_svg(picture, title))
        finally:
            await app.lab.stop()


async def main(names: list[str]) -> None:
    for name in names or list(RUNS):
        keys, ready = RUNS[name]
        path = HERE / f"{name}.svg"
        await shoot(name, keys, ready, path)
        print(f"wrote {path.relative_to(HERE.parent)} and picture-{name}.svg")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
