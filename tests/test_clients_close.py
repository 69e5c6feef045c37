"""Closing clients never hangs, whatever they are doing: hundreds at once, in every state.

A close that cancels a task sitting in a read can hang forever; the bound here is
pytest-timeout's, and the kernel (ss) confirms every socket is really gone.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter

import pytest
from tests.kernel import ss

from svcviz.clients import Fleet

pytestmark = pytest.mark.timeout(30)


async def all_in(fleet: Fleet, ids: list[int], states: set[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    while True:
        views = [c for c in fleet.clients() if c.id in wanted]
        if all(c.state in states and c.local_port for c in views):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not all {'/'.join(states)}: {Counter(c.state for c in views)}")
        await asyncio.sleep(0.02)


def client_side_rows(server_port: int) -> Counter:
    return Counter(row[0] for row in ss("-tan", f"dport = :{server_port}"))


def closed_port() -> socket.socket:
    """A port with nobody listening (bound, so nobody else takes it meanwhile)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder


@pytest.mark.timeout(20)
async def test_close_all_with_hundreds_of_clients_in_every_state(serve):
    event = serve("event", "--backlog", "256")
    serial = serve("serial", "--backlog", "128")
    listen = serve("listen-only", "--backlog", "127")
    fleet = Fleet("127.0.0.1", event.port, connect_timeout=60, kept_finished=1000)

    served = await fleet.add("interactive", count=100)
    await all_in(fleet, served, {"idle"})
    for cid in served:
        await fleet.send_line(cid, "discard")
    await all_in(fleet, served, {"served"})

    fleet.retarget("127.0.0.1", serial.port)
    [hostage] = await fleet.add("silent")
    await all_in(fleet, [hostage], {"idle"})
    waiting = await fleet.add("scripted", count=100, queries=2, every=0.05)
    await all_in(fleet, waiting, {"waiting"})

    fleet.retarget("127.0.0.1", listen.port)
    queued = await fleet.add("interactive", count=128)  # backlog 127 holds 128
    await all_in(fleet, queued, {"idle"})
    knocking = await fleet.add("half-close", count=100)
    await all_in(fleet, knocking, {"connecting"})
    assert client_side_rows(listen.port)["SYN-SENT"] == 100

    holder = closed_port()
    fleet.retarget("127.0.0.1", holder.getsockname()[1])
    refused = await fleet.add("interactive", count=20)
    await all_in(fleet, refused, {"refused"})
    holder.close()

    assert fleet.alive() == 429
    await fleet.close_all()
    assert fleet.alive() == 0
    states = Counter(c.state for c in fleet.clients())
    assert states == {"quit": 429, "refused": 20}
    for port in (event.port, serial.port, listen.port):
        assert not {"ESTAB", "SYN-SENT"} & set(client_side_rows(port))
    await fleet.aclose()


async def test_close_one_by_one_while_connecting_and_queued(serve):
    listen = serve("listen-only", "--backlog", "49")
    fleet = Fleet("127.0.0.1", listen.port, connect_timeout=60)
    queued = await fleet.add("scripted", count=50, queries=1)
    await all_in(fleet, queued, {"waiting"})
    knocking = await fleet.add("interactive", count=50)
    await all_in(fleet, knocking, {"connecting"})
    for cid in knocking + queued:
        await fleet.close(cid)
        assert fleet.clients()[cid - 1].state == "quit"
    assert fleet.alive() == 0
    assert not {"ESTAB", "SYN-SENT"} & set(client_side_rows(listen.port))


async def test_aclose_before_the_clients_ever_ran(serve):
    server = serve("event", "--backlog", "256")
    fleet = Fleet("127.0.0.1", server.port)
    await fleet.add("scripted", count=300, every=10)
    await fleet.aclose()  # no task had a turn yet
    assert fleet.alive() == 0
    assert {c.state for c in fleet.clients()} == {"quit"}
    assert "ESTAB" not in client_side_rows(server.port)


async def test_close_a_hung_client_and_one_between_queries(serve):
    leaky = serve("fork", "--leak-fd")
    fleet = Fleet("127.0.0.1", leaky.port, hung_after=0.05)
    [hung] = await fleet.add("half-close")
    await all_in(fleet, [hung], {"served"})
    await asyncio.sleep(0.3)  # the child has exited by now; the parent keeps the connection
    fleet.mark_server_gone(fleet.clients()[0].local_port)
    await all_in(fleet, [hung], {"hung"})
    [pausing] = await fleet.add("scripted", queries=5, every=30)
    await all_in(fleet, [pausing], {"served"})  # first answer in; the next ask is 30 s away
    await fleet.close_all()
    assert [c.state for c in fleet.clients()] == ["quit", "quit"]
