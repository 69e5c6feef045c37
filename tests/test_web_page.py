"""`svcviz web`'s page over plain HTTP (no browser): links made from the Host header the
browser sent (textual-serve issue #42), and nothing fetched from elsewhere."""

from __future__ import annotations

import http.client
import re
import signal
import socket
import subprocess
import sys

import pytest

SERVING = re.compile(r"serving the dashboard on http://127\.0\.0\.1:(\d+)")


@pytest.fixture
def web_port():
    proc = subprocess.Popen(
        [sys.executable, "-m", "svcviz", "web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        match = SERVING.search(proc.stdout.readline())
        assert match, "svcviz web did not say where it serves"
        yield int(match.group(1))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()


def page(port: int, host: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


def test_links_point_where_the_browser_came_from(web_port):
    """A laptop on the LAN that asked for 192.0.2.7:8000 is sent back there (only the header
    names that address: nothing is sent to it)."""
    text = page(web_port, "192.0.2.7:8000")
    assert "ws://192.0.2.7:8000/ws" in text
    assert set(re.findall(r"https?://([^/\"']+)/static", text)) == {"192.0.2.7:8000"}


def test_a_host_header_that_is_no_address_is_not_put_into_the_page(web_port):
    text = page(web_port, 'evil"><script>')
    assert '<script>"' not in text and "evil" not in text
    assert f"ws://127.0.0.1:{web_port}/ws" in text


def test_the_page_links_nothing_outside(web_port):
    text = page(web_port, f"127.0.0.1:{web_port}")
    outside = {u for u in re.findall(r"https?://[^\"' )]+", text) if not u.startswith(f"http://127.0.0.1:{web_port}/")}
    assert outside <= {"http://www.w3.org/2000/svg"}, outside  # an SVG namespace, never fetched
    assert "fonts/RobotoMono" in text  # the bundled font instead of Google's


def test_a_busy_port_is_one_line():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "svcviz", "web", "--port", str(port)], capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 2 and f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
