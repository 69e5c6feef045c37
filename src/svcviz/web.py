"""`svcviz web`: the dashboard in a browser, served by textual-serve.

Each browser tab gets its own dashboard process (textual-serve's design), started as
`svcviz --port 0 ...`, so each has its own lab server on its own free port. When the tab
closes the dashboard is told to quit, and killed with its lab server's session if it has
not gone within STOP_TIMEOUT. A cap on tabs keeps a room of browsers from overloading the
machine: the tab past it gets a page saying so, and no process.

Links in the page are made from the Host header the browser sent (or --public-url), so a
page loaded from another machine on the LAN connects back to the address it used
(textual-serve issue #42: with a wrong public_url the page stays on its splash screen).
The page needs no network: xterm.js and the Roboto Mono font are textual-serve's own
static files; the Google Fonts link of its template is replaced by the bundled font.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from svcviz.lab.supervisor import kill_session
from svcviz.procstat import descendants

log = logging.getLogger("svcviz.web")
DEFAULT_PORT = 8000
DEFAULT_TABS = 8
STOP_TIMEOUT = 3.0
WEB_FONT = re.compile(r'<link\s+rel="stylesheet"\s+href="https://fonts\.googleapis\.com[^"]*"\s*/?>')
LOCAL_FONT = (
    '<style>@font-face { font-family: "Roboto Mono"; '
    'src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf"); }</style>'
)
HOST_HEADER = re.compile(r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
FULL_PAGE = """<!DOCTYPE html>
<html><head><title>svcviz: too many tabs</title></head>
<body style="background:#0c181f;color:#e0e0e0;font-family:monospace;padding:2em">
<h1>too many tabs open: {open} of {cap}</h1>
<p>Each tab runs its own dashboard and server. Close one and reload this page.</p>
</body></html>
"""


def offline_template(directory: Path) -> str:
    """textual-serve's page, with its web font link swapped for the font it bundles."""
    return WEB_FONT.sub(LOCAL_FONT, (directory / "app_index.html").read_text())


async def _exited(process: asyncio.subprocess.Process, timeout: float) -> bool:
    """Whether process exited within timeout (its returncode, not its pipes' end)."""
    deadline = time.monotonic() + timeout
    while process.returncode is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return process.returncode is not None


class Tab(AppService):
    """One tab's dashboard process; stop() makes sure it and its lab server are gone.

    SIGTERM, not textual-serve's "quit" message: the dashboard's SIGTERM handler stops its
    lab (server, clients) before it exits, where "quit" would end the app at once."""

    async def stop(self) -> None:
        process, task = self._process, self._task
        self._task = None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            if not await _exited(process, STOP_TIMEOUT):
                self.kill(process.pid)
                await _exited(process, STOP_TIMEOUT)
        if task is not None:
            await asyncio.wait([task], timeout=STOP_TIMEOUT)

    @staticmethod
    def kill(pid: int) -> None:
        for each in descendants(pid):
            kill_session(each)  # a lab server leads its own session: it and all it forked
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)


class WebServer(Server):
    def __init__(self, command: str, host: str, port: int, public_url: str | None, max_tabs: int) -> None:
        super().__init__(command, host=host, port=port, title="svcviz", public_url=public_url)
        self.fixed_url = public_url is not None
        self.max_tabs = max_tabs
        self.tabs: set[Tab] = set()

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({"app_index.html": offline_template(self.templates_path)}))
        return app

    def serve(self, debug: bool = False) -> None:
        """textual-serve's, on a socket bound first: --port 0 takes a free port, and the
        line printed names the real one (the tests read it)."""
        listener = socket.create_server((self.host, self.port), family=_family(self.host), reuse_port=False)
        self.port = listener.getsockname()[1]
        if not self.fixed_url:
            self.public_url = f"http://{_url_host(self.host)}:{self.port}"
        print(f"svcviz web: serving the dashboard on {self.public_url} (at most {self.max_tabs} tabs)", flush=True)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_exit)
        web.run_app(self._make_app(), sock=listener, handle_signals=False, loop=loop, print=lambda *args: None)

    async def on_startup(self, app: web.Application) -> None:
        pass  # textual-serve prints a logo here; serve() said where it serves

    async def on_shutdown(self, app: web.Application) -> None:
        for tab in list(self.tabs):
            await tab.stop()

    def _full_page(self) -> web.Response:
        text = FULL_PAGE.format(open=len(self.tabs), cap=self.max_tabs)
        return web.Response(text=text, content_type="text/html", status=503)

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if len(self.tabs) >= self.max_tabs:
            return self._full_page()
        if not self.fixed_url and HOST_HEADER.fullmatch(request.host):
            # No await between this and the links being made from it: no other request interleaves.
            self.public_url = f"{request.scheme}://{request.host}"
        return await super().handle_index(request)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's, with a Tab for its process and the cap checked again (two
        pages loaded at once both passed the index check)."""
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        if len(self.tabs) >= self.max_tabs:
            await websocket.close(message=f"too many tabs open: {len(self.tabs)} of {self.max_tabs}".encode())
            return websocket
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)

        async def close() -> None:  # what the Tab calls when its process ends (close's own result unread)
            await websocket.close()

        tab = Tab(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.tabs.add(tab)
        try:
            await tab.start(width, height)
            await self._process_messages(websocket, tab)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:
            log.exception(error)
        finally:
            await tab.stop()
            self.tabs.discard(tab)
        return websocket


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def tab_command(dashboard_args: list[str]) -> str:
    """What each tab runs: this svcviz's dashboard (dashboard_args carry --port 0: a free
    port for each tab's lab server). exec: the shell textual-serve starts is replaced, so
    the tab's process is the dashboard."""
    return shlex.join(["exec", sys.executable, "-m", "svcviz", *dashboard_args])


def main(args: argparse.Namespace, dashboard_args: list[str]) -> int:
    server = WebServer(tab_command(dashboard_args), args.host, args.port, args.public_url, args.max_tabs)
    try:
        server.serve()
    except OSError as exc:
        print(f"svcviz web: cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr, flush=True)
        return 2
    return 0
