"""The client fleet, against real server models: every state reached for real.

What a client says about itself is checked against what the kernel says (ss), where the
kernel has something to say.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time

import pytest
from tests.kernel import children, listen_queue, ss

from svcviz.clients import CLIENT_STATES, ClientView, Fleet, FleetError, FleetFull

pytestmark = pytest.mark.timeout(30)


async def until(fleet: Fleet, client_id: int, *states: str, timeout: float = 5.0) -> ClientView:
    """Wait until the client is in one of states; fail with what it is in otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        view = next(c for c in fleet.clients() if c.id == client_id)
        assert view.state in CLIENT_STATES
        if view.state in states:
            return view
        if time.monotonic() > deadline:
            pytest.fail(f"client #{client_id} is {view.state} ({view.error}), not {'/'.join(states)}")
        await asyncio.sleep(0.01)


def client_rows(server_port: int, client_port: int) -> list[str]:
    """The kernel's states of the client side of one connection."""
    return [row[0] for row in ss("-tan", f"dport = :{server_port}", f"sport = :{client_port}")]


async def test_idle_then_served_on_serial(serve):
    server = serve("serial")
    fleet = Fleet("127.0.0.1", server.port)
    [cid] = await fleet.add("interactive")
    view = await until(fleet, cid, "idle")
    assert view.open and view.connect_ms is not None and view.local_port
    assert client_rows(server.port, view.local_port) == ["ESTAB"]
    await fleet.send_line(cid, "discard")
    view = await until(fleet, cid, "served")
    assert view.last_reply == "discard,9"
    assert (view.sent, view.received) == (len(b"discard\r\n"), len(b"discard,9\n"))
    await fleet.send_line(cid, "nosuchservice")
    await until(fleet, cid, "served")
    assert fleet.clients()[0].last_reply == "error: unknown service 'nosuchservice'"
    await fleet.aclose()


async def test_waiting_behind_a_silent_client_on_serial(serve):
    server = serve("serial")
    fleet = Fleet("127.0.0.1", server.port)
    [hostage] = await fleet.add("silent")
    await until(fleet, hostage, "idle")
    [patient] = await fleet.add("scripted", queries=1)
    view = await until(fleet, patient, "waiting")
    assert view.asked == 1 and view.answered == 0
    await asyncio.sleep(0.2)
    assert fleet.clients()[1].state == "waiting"
    assert listen_queue(server.port)[0] == 1  # the kernel holds it in the accept queue
    await fleet.close(hostage)
    assert fleet.clients()[0].state == "quit" and not fleet.clients()[0].open
    view = await until(fleet, patient, "quit")  # served, and a scripted client then quits
    assert view.answered == 1 and view.last_reply == "discard,9"
    await fleet.aclose()


async def test_refused_after_accept_once_served_its_one_client(serve):
    server = serve("accept-once")
    fleet = Fleet("127.0.0.1", server.port)
    [first] = await fleet.add("interactive")
    await until(fleet, first, "idle")
    await fleet.send_line(first, "discard")
    await until(fleet, first, "served")
    [second] = await fleet.add("interactive")
    view = await until(fleet, second, "refused")
    assert not view.open and "refused" in view.error.lower()
    await fleet.aclose()


async def test_timed_out_when_the_accept_queue_is_full(serve):
    server = serve("listen-only", "--backlog", "0")
    fleet = Fleet("127.0.0.1", server.port, connect_timeout=1.5)  # < the 2nd SYN retry (3 s)
    [queued] = await fleet.add("interactive")
    await until(fleet, queued, "idle")
    assert listen_queue(server.port) == (1, 0)  # backlog 0 holds one: full
    [dropped] = await fleet.add("interactive")
    view = await until(fleet, dropped, "connecting")
    while view.local_port is None:  # known once connect() is called, on the client's task
        await asyncio.sleep(0.01)
        view = await until(fleet, dropped, "connecting")
    assert client_rows(server.port, view.local_port) == ["SYN-SENT"]
    view = await until(fleet, dropped, "timed_out")
    assert not view.open and view.connect_ms is None
    assert client_rows(server.port, view.local_port) == []  # the SYN retries stop with it
    await fleet.aclose()


async def test_hung_when_a_leaking_fork_server_keeps_the_connection(serve):
    server = serve("fork", "--leak-fd")
    fleet = Fleet("127.0.0.1", server.port, hung_after=0.8)
    [cid] = await fleet.add("half-close")
    view = await until(fleet, cid, "served")
    assert view.last_reply == "discard,9"
    # The child saw our EOF and exited (a zombie now); the parent still holds its copy.
    children_left = lambda: set(children(server.pid).values())  # noqa: E731
    deadline = time.monotonic() + 5
    while children_left() - {"Z"} and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert children_left() == {"Z"}
    fleet.mark_server_gone(view.local_port)
    await asyncio.sleep(0.1)
    assert fleet.clients()[0].state == "served"  # not yet: hung_after has not passed
    view = await until(fleet, cid, "hung")
    assert view.open and "no EOF" in view.error
    assert client_rows(server.port, view.local_port) == ["FIN-WAIT-2"]  # we shut our side; they never did
    await fleet.close(cid)
    assert fleet.clients()[0].state == "quit"
    await fleet.aclose()


async def test_closed_by_a_fork_server_that_closes_its_copy(serve):
    server = serve("fork")
    fleet = Fleet("127.0.0.1", server.port)
    [cid] = await fleet.add("half-close")
    view = await until(fleet, cid, "closed")
    assert view.last_reply == "discard,9" and not view.open


async def test_closed_and_reset_when_the_server_stops(serve):
    """The accepted connection gets the server's FIN (EOF); the queued one, never
    accepted, is reset when the listening socket goes."""
    server = serve("serial")
    fleet = Fleet("127.0.0.1", server.port)
    [accepted] = await fleet.add("interactive")
    await fleet.send_line(accepted, "discard")
    await until(fleet, accepted, "served")
    [queued] = await fleet.add("interactive")
    await until(fleet, queued, "idle")
    assert listen_queue(server.port)[0] == 1
    server.proc.terminate()
    server.proc.wait(5)
    assert (await until(fleet, accepted, "closed")).error is None
    view = await until(fleet, queued, "reset")
    assert not view.open and "reset" in view.error
    await fleet.aclose()


async def test_scripted_clients_ask_every_period_then_quit(serve):
    server = serve("event")
    fleet = Fleet("127.0.0.1", server.port)
    began = time.monotonic()
    [cid] = await fleet.add("scripted", queries=3, every=0.2, query="smtp")
    view = await until(fleet, cid, "quit")
    assert time.monotonic() - began >= 0.4  # three queries, two periods apart
    assert (view.asked, view.answered, view.last_reply) == (3, 3, "smtp,25")


async def test_retarget_moves_later_clients_only(serve):
    first, second = serve("event"), serve("event")
    fleet = Fleet("127.0.0.1", first.port)
    [a] = await fleet.add()
    fleet.retarget("127.0.0.1", second.port)
    [b] = await fleet.add()
    va, vb = await until(fleet, a, "idle"), await until(fleet, b, "idle")
    assert client_rows(first.port, va.local_port) == ["ESTAB"]
    assert client_rows(second.port, vb.local_port) == ["ESTAB"]
    await fleet.aclose()


async def test_cap_adds_what_fits_then_says_so(serve):
    server = serve("event")
    changes = []
    fleet = Fleet("127.0.0.1", server.port, cap=5, on_change=lambda: changes.append(fleet.version))
    with pytest.raises(FleetFull, match="client cap reached: 5 clients") as caught:
        await fleet.add("interactive", count=7)
    assert caught.value.added == [1, 2, 3, 4, 5]
    assert fleet.alive() == 5 and len(fleet.clients()) == 5
    await fleet.close(1)
    assert fleet.alive() == 4
    assert await fleet.add() == [6]
    assert changes and changes == sorted(changes) and fleet.version == changes[-1]
    await fleet.aclose()
    assert fleet.alive() == 0


async def test_clear_errors_for_bad_requests(serve):
    server = serve("event")
    fleet = Fleet("127.0.0.1", server.port)
    with pytest.raises(FleetError, match="unknown client kind"):
        await fleet.add("chatty")
    with pytest.raises(FleetError, match="take no option"):
        await fleet.add("silent", queries=2)
    with pytest.raises(FleetError, match="queries must be"):
        await fleet.add("scripted", queries=0)
    with pytest.raises(FleetError, match="no client #9"):
        await fleet.send_line(9, "discard")
    [cid] = await fleet.add("interactive")
    with pytest.raises(FleetError, match="one line"):
        await fleet.send_line(cid, "discard\nsmtp")
    await fleet.close(cid)
    with pytest.raises(FleetError, match="quit: it cannot send"):
        await fleet.send_line(cid, "discard")
    fleet.retarget("no-such-host.invalid", 6168)
    with pytest.raises(FleetError, match="cannot resolve"):
        await fleet.add()


async def test_finished_clients_are_forgotten_past_twice_the_kept_number():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # nobody listening: every client is refused at once
    fleet = Fleet("127.0.0.1", holder.getsockname()[1], cap=10, kept_finished=10)
    try:
        for _ in range(5):
            ids = await fleet.add(count=10)
            for cid in ids:
                await until(fleet, cid, "refused")
    finally:
        holder.close()
    kept = [c.id for c in fleet.clients()]
    assert len(kept) <= 20 and kept[-1] == 50 and kept == sorted(kept)


async def test_error_when_this_process_is_out_of_fds(serve):
    server = serve("event", "--backlog", "64")
    fleet = Fleet("127.0.0.1", server.port)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = {int(fd) for fd in os.listdir("/proc/self/fd")}
    free = [fd for fd in range(max(in_use) + 6) if fd not in in_use][:5]
    resource.setrlimit(resource.RLIMIT_NOFILE, (free[-1] + 1, hard))  # room for five more fds
    try:
        ids = await fleet.add("interactive", count=30)
        await asyncio.sleep(0.2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    states = {c.state for c in fleet.clients()}
    assert states == {"idle", "error"}
    failed = [c for c in fleet.clients() if c.state == "error"]
    assert all(not c.open and c.error == "socket: Too many open files" for c in failed)
    assert len(failed) in (24, 25)  # five fit, or six: listdir's own fd looked in use
    assert fleet.alive() == 30 - len(failed) and len(ids) == 30
    await fleet.aclose()


async def test_concurrent_adds_never_pass_the_cap(serve):
    server = serve("event", "--backlog", "512")
    fleet = Fleet("127.0.0.1", server.port, cap=120)
    outcomes = await asyncio.gather(fleet.add(count=100), fleet.add(count=100), return_exceptions=True)
    added = [o.added if isinstance(o, FleetFull) else o for o in outcomes]
    assert any(isinstance(o, FleetFull) for o in outcomes)  # one or both were cut short
    assert sum(map(len, added)) == 120 == fleet.alive() == len(fleet.clients())
    await fleet.aclose()
