"""Clients that speak the watched server's language: a real GET against an HTTP server, a
PING against Redis, a held connection for raw; the protocol told by a probe when the port
does not tell. Real servers on free loopback ports, each in its own temp dir."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time

import pytest

from realservers import free_port, running
from svcviz.clients import Fleet, FleetError
from svcviz.clients.protocols import PROTOCOLS
from svcviz.lab import Lab


async def until_client(lab: Lab, predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        update = await lab.sample()
        found = [c for c in update.clients if predicate(c)]
        if found:
            return update, found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no client as expected: {update.clients}")


@pytest.fixture
def http_server(tmp_path):
    port = free_port()
    (tmp_path / "index.html").write_text("<p>hello</p>\n")
    with running([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], port, tmp_path):
        yield port


async def test_c_against_an_http_server_gets_and_shows_the_status_line(http_server):
    lab = Lab.attach(port=http_server)
    await lab.start()
    try:
        # The port is no well-known one: the program's title tells.
        assert lab.client_protocol == "http (the server is http.server)"
        await lab.add_clients(1)
        update, client = await until_client(lab, lambda c: c.last_reply is not None)
        assert client.last_reply.startswith("HTTP/1.0 200 OK"), client
        assert client.answered == client.asked == 1
        assert update.client_protocol == lab.client_protocol
    finally:
        await lab.stop()


async def test_a_typed_path_is_a_get_of_it(http_server):
    lab = Lab.attach(port=http_server, client_protocol="http")
    await lab.start()
    try:
        assert lab.client_protocol == "http (--client-protocol)"
        (client_id,) = await lab.add_clients(1, kind="silent")  # connects, says nothing until typed to
        await until_client(lab, lambda c: c.id == client_id and c.state == "idle")
        await lab.send_line(client_id, "/nope.html")
        _, client = await until_client(lab, lambda c: c.id == client_id and c.last_reply)
        assert client.last_reply.startswith("HTTP/1.0 404"), client
    finally:
        await lab.stop()


async def test_raw_clients_connect_and_hold(http_server):
    lab = Lab.attach(port=http_server, client_protocol="raw")
    await lab.start()
    try:
        await lab.add_clients(2)
        await until_client(lab, lambda c: c.state == "idle")
        await lab.sample()
        assert all(c.sent == 0 for c in lab.fleet.clients())
        assert lab.client_protocol == "raw (--client-protocol)"
    finally:
        await lab.stop()


def test_an_unknown_protocol_is_one_clear_error():
    with pytest.raises(FleetError, match="unknown client protocol 'gopher'"):
        Fleet("127.0.0.1", 1, protocol="gopher")
    result = subprocess.run(
        [sys.executable, "-m", "svcviz", "watch", "--port", "1", "--client-protocol", "gopher"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "invalid choice: 'gopher'" in result.stderr and "Traceback" not in result.stderr


def test_http_asks_with_a_request_and_counts_only_status_lines():
    http = PROTOCOLS["http"]
    assert http.request("/x", "127.0.0.1", 80).startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:80\r\n")
    assert http.request("not a path", "h", 1).startswith(b"GET / HTTP/1.1")
    assert http.answers("HTTP/1.1 200 OK") and not http.answers("Content-Type: text/html")
    assert not http.shows("<p>hello</p>")


async def test_a_server_neither_port_nor_program_names_gets_line_and_no_probe(serve):
    server = serve("serial")
    lab = Lab.attach(port=server.port)
    await lab.start()
    try:
        assert lab.client_protocol.startswith("line (neither its port nor its program tells")
        update = await lab.sample()
        assert not update.snapshot.connections  # watching sent the server nothing
        await lab.add_clients(1)
        await lab.send_line(1, "discard")
        _, client = await until_client(lab, lambda c: c.last_reply)
        assert client.last_reply.startswith("discard")
    finally:
        await lab.stop()


async def test_redis_answers_the_c_key_with_pong(tmp_path):
    redis = shutil.which("redis-server")
    if redis is None:
        pytest.skip("Redis is not installed (apt-get install -y redis-server)")
    port = free_port()
    # Its own config and data dir: never the system service.
    conf = tmp_path / "redis.conf"
    conf.write_text(f'port {port}\nbind 127.0.0.1\ndir {tmp_path}\nsave ""\nappendonly no\ndaemonize no\n')
    with running([redis, str(conf)], port, tmp_path):
        lab = Lab.attach(port=port)
        await lab.start()
        try:
            assert lab.client_protocol == "redis (the server is redis-server)"
            await lab.add_clients(1)
            _, client = await until_client(lab, lambda c: c.last_reply)
            assert client.last_reply == "+PONG"
            await lab.send_line(client.id, "ECHO hi")
            _, client = await until_client(lab, lambda c: c.answered == 2)
            assert client.last_reply in ("$2", "hi")
        finally:
            await lab.stop()
