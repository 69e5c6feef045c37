"""Make screenshots/MODEL.svg for each model: a real lab, real clients, keys pressed; and
screenshots/picture-MODEL.svg, the picture alone (svcviz.picture's SVG, for handouts).

Run with `make screenshots` (or name some: `make_screenshots.py fork web handout`). Each
model is started on a free port, driven by the keys a newcomer would press (its lesson's
"try next"), and captured once the kernel shows the expected state. Two more: web.png,
`svcviz web` in headless chromium through the same selenium helpers as tests/test_web.py;
handout-zombie.svg, the page of a recorded fork session's handout (`svcviz replay --svg`)
where the zombie appeared. `fork-leak-fd` is fork with --leak-fd: its picture is the lesson.
`code-fork` is the fork model with the code panel (v) and tracing (t) on. `nginx` and
`postgres`: the real servers (as tests/test_real_servers.py starts them) watched with
`svcviz watch --port`, a few clients held; skipped, saying why, when not installed.
`pipes`: the pipeline screen (|) on `(cat & cat & cat &) | svcviz parse`, the parser
stopped and two typed lines waiting in the cats' pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from svcviz.lab import Lab
from svcviz.observe.architecture import judge
from svcviz.picture import layout, picture_to_svg
from svcviz.record.reader import Recording
from svcviz.record.recording_lab import RecordingLab
from svcviz.record.writer import Writer
from svcviz.servers.config import ServerConfig
from svcviz.tui.app import SvcvizApp
from svcviz.tui.handout import write_handout

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the browser helpers tests/test_web.py uses
SIZE = (120, 36)
REAL_SIZE = (160, 45)  # a real server has more processes and rows than our models
PICTURE = (118, 28)
PIPES_SIZE = (150, 30)  # the pipeline screen's rows: fds 0-2, bytes, and the shell's other pipe fds


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
    "code-fork": (["g", "v", "t", "_", "_", "c", "c", "_", "enter", *"discard", "enter", "_"], processes(3)),
}
OPTIONS = {"fork-leak-fd": {"model": "fork", "close_fd": False}, "code-fork": {"model": "fork"}}


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
            await app.action_quit()  # tracing off, then the lab


async def shoot_watch(
    name: str, port: int, architecture: str, held: int, path: Path, protocol: str | None = None, timeout: float = 20.0
) -> None:
    """The dashboard watching what listens on port (as `svcviz watch --port`), saved once
    it names the expected architecture with the held connections accepted."""
    app = SvcvizApp(Lab.attach(port=port, client_protocol=protocol), picture=False)
    async with app.run_test(size=REAL_SIZE) as pilot:
        try:
            deadline = time.monotonic() + timeout
            while not (app.latest and ready(app.latest.snapshot, architecture, held)):
                if time.monotonic() > deadline:
                    named = judge(app.latest.snapshot).name if app.latest else "nothing"
                    raise SystemExit(f"make_screenshots: {name} was named {named}, never {architecture}")
                await pilot.pause(0.05)
            await pilot.pause(1.0)  # a second of sparkline, and every panel drawn
            path.write_text(app.export_screenshot(title=f"svcviz watch --port {port}: {name}"))
        finally:
            await app.action_quit()


def ready(snapshot, architecture: str, held: int) -> bool:
    accepted = sum(c.state == "accepted" for c in snapshot.connections)
    return judge(snapshot).name == architecture and accepted >= held


@contextlib.contextmanager
def keep_alive_clients(port: int, count: int):
    """count HTTP/1.1 clients, each served one GET and then idle on its kept-alive connection."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
            if not sock.recv(4096).startswith(b"HTTP/1.1 200"):
                raise SystemExit("make_screenshots: nginx did not answer the GET")
        yield socks
    finally:
        for sock in socks:
            sock.close()


@contextlib.contextmanager
def psql_sessions(psql: str, port: int, count: int):
    """count psql processes, each a session whose backend sleeps in pg_sleep(30); killed after."""
    base = [psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-X", "-q", "-c"]
    deadline = time.monotonic() + 15
    while subprocess.run([*base, "select 1"], capture_output=True).returncode:  # still starting up
        if time.monotonic() > deadline:
            raise SystemExit("make_screenshots: PostgreSQL never accepted a session")
        time.sleep(0.2)
    sessions = []
    try:
        for _ in range(count):
            sessions.append(subprocess.Popen([*base, "select pg_sleep(30)"], stdout=subprocess.DEVNULL))
        yield sessions
    finally:
        for session in sessions:
            session.kill()
            session.wait()


async def shoot_nginx(path: Path) -> bool:
    """nginx, a master and 4 workers, 6 idle keep-alive clients."""
    from realservers import free_port, nginx_argv, running

    nginx = shutil.which("nginx")
    if not nginx:
        print(f"make_screenshots: skipped {path.name}: nginx is not installed (`make real-servers` installs it)")
        return False
    folder = Path(tempfile.mkdtemp(prefix="svcviz-nginx-"))
    port = free_port()
    try:
        with running(nginx_argv(nginx, folder, port, workers=4), port, folder), keep_alive_clients(port, 6):
            await shoot_watch("nginx", port, "prefork+event-loop", 6, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return True


async def shoot_postgres(path: Path) -> bool:
    """PostgreSQL, a fresh cluster, 3 psql sessions each in a query."""
    from realservers import PG_BIN, free_port, pg_dir, pg_missing, postgres_argv, running

    psql = shutil.which("psql") or str(PG_BIN / "psql")
    if reason := pg_missing() or (None if Path(psql).exists() else "psql is not installed"):
        print(f"make_screenshots: skipped {path.name}: {reason}")
        return False
    port = free_port()
    with pg_dir() as folder:
        argv = postgres_argv(folder, port)
        with running(argv, port, folder, user="postgres"), psql_sessions(psql, port, 3):
            await shoot_watch("PostgreSQL", port, "fork-per-connection", 3, path, protocol="raw")
    return True


def shoot_web(path: Path) -> bool:
    """`svcviz web --model fork` in headless chromium: three clients, two closed (zombies)."""
    import browser

    if not browser.AVAILABLE:
        print(f"make_screenshots: skipped {path.name}: {browser.MISSING}")
        return False
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    web, url = browser.start_web("--model", "fork")
    profile = tempfile.mkdtemp(prefix="svcviz-shot-")
    driver = browser.start_browser(profile)
    try:
        browser.open_dashboard(driver, url)
        time.sleep(2.0)  # the lab started, its first samples drawn
        driver.find_element(By.TAG_NAME, "body").click()
        for key in "ccc":
            ActionChains(driver).send_keys(key).perform()
            time.sleep(0.3)
        time.sleep(1.0)
        for key in "xx":
            ActionChains(driver).send_keys(key).perform()
            time.sleep(0.3)
        time.sleep(2.0)  # the zombies and a bit of sparkline
        driver.save_screenshot(str(path))
    finally:
        driver.quit()
        web.send_signal(signal.SIGTERM)
        web.wait(15)
        web.stdout.close()
        shutil.rmtree(profile, ignore_errors=True)
    return True


async def record_fork_class(path: Path) -> None:
    """A fork session as a class would see it: c, c, then x (a zombie), then w (reaped)."""
    lab = RecordingLab(Lab(ServerConfig("fork", port=0), port_fallback=False), Writer(str(path)))
    await lab.start()

    async def consume() -> None:
        async for _ in lab.updates():
            pass

    consumer = asyncio.create_task(consume())
    try:
        for step in (lambda: lab.add_clients(1), lambda: lab.add_clients(1), lab.close_client, lab.reap_now):
            await asyncio.sleep(1.5)
            await step()
        await asyncio.sleep(1.5)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await lab.stop()


def make_handout(path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="svcviz-handout-"))
    try:
        asyncio.run(record_fork_class(folder / "class.jsonl.gz"))
        recording = Recording(str(folder / "class.jsonl.gz"))
        pages = write_handout(recording, str(folder / "handout"))
        samples = list(recording)
        page = next(name for name, index in pages if samples[index].snapshot.zombies)
        shutil.copy(folder / "handout" / page, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def shoot_pipes(path: Path, timeout: float = 15.0) -> bool:
    from svcviz.tui.screens.pipes import PipeScreen

    app = SvcvizApp(Lab(ServerConfig("serial", port=0), port_fallback=False))
    async with app.run_test(size=PIPES_SIZE) as pilot:
        try:
            await pilot.press("vertical_line", "4")
            deadline = time.monotonic() + timeout

            async def until(what: str, holds) -> None:
                while not (isinstance(app.screen, PipeScreen) and holds(app.screen)):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"make_screenshots: pipes never showed {what}")
                    await pilot.pause(0.05)

            await until(
                "the parser reading",
                lambda s: any(
                    m.call == "read(0)" and "svcviz parse" in m.command and m.name != "bash" for m in s.view.members
                ),
            )
            await pilot.press("z", "a", "b")
            await until("13 bytes waiting", lambda s: any(p.waiting == 13 for p in s.view.pipes))
            await pilot.pause(0.5)
            path.write_text(app.export_screenshot(title="svcviz: | (cat & cat & cat &) | svcviz parse"))
        finally:
            if isinstance(app.screen, PipeScreen):
                await app.screen.action_leave()  # the pipeline killed, and waited for
            await app.action_quit()
    return True


REAL = {"nginx": shoot_nginx, "postgres": shoot_postgres, "pipes": shoot_pipes}


async def main(names: list[str]) -> int:
    known = [*RUNS, "web", "handout", *REAL]
    unknown = [name for name in names if name not in known]
    if unknown:
        print(
            f"make_screenshots.py: no screenshot named {', '.join(unknown)}; known: {' '.join(known)}", file=sys.stderr
        )
        return 2
    for name in names or known:
        if name in REAL:
            path = HERE / f"{name}.svg"
            wrote = await REAL[name](path)
        elif name == "web":
            wrote = shoot_web(HERE / "web.png")
            path = HERE / "web.png"
        elif name == "handout":
            path = HERE / "handout-zombie.svg"
            await asyncio.to_thread(make_handout, path)
            wrote = True
        else:
            keys, ready = RUNS[name]
            path = HERE / f"{name}.svg"
            await shoot(name, keys, ready, path)
            wrote = True
        if wrote:
            print(
                f"wrote {path.relative_to(HERE.parent)}"
                + ("" if name in ("web", "handout", *REAL) else f" and picture-{name}.svg")
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
