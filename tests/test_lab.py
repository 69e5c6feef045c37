"""The lab's promises, each with a test that fails when the promise is broken.

Everything is real: servers, clients, the kernel's view. The lab runs inside pytest here
(pytest is a subreaper too), or in a child process when the test kills it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import reap_adopted_zombies, wait_until
from kernel import children, listen_queue
from svcviz.lab import Lab, LabError, session_pids
from svcviz.observe.observer import Observer
from svcviz.procstat import read_stat
from svcviz.servers.config import ServerConfig
from svcviz.servers.registry import NAMES


async def next_update(lab: Lab, predicate, timeout: float = 5.0):
    """The first update that satisfies predicate (its value), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        update = await lab.sample()
        if predicate(update):
            return update
        await asyncio.sleep(0.05)
    raise AssertionError("the lab never showed what was expected")


@pytest.fixture
async def lab_of():
    labs: list[Lab] = []

    async def start(model: str, **options) -> Lab:
        lab = Lab(ServerConfig(model=model, port=0, **options))
        await lab.start()
        labs.append(lab)
        return lab

    yield start
    for lab in labs:
        await lab.stop()


async def test_start_reports_the_bound_port_and_stop_frees_it(lab_of):
    lab = await lab_of("serial")
    assert lab.port != 0 and listen_queue(lab.port) == (0, 8)
    pid = lab.server_pid
    await lab.stop()
    assert listen_queue(lab.port) is None and session_pids(pid) == []


async def test_stop_while_the_server_is_starting_leaves_nothing():
    # The lab knows a server from its spawn, not only from its ready line: a stop (quit,
    # model switch) that comes while Python is still importing must kill it all the same.
    lab = Lab(ServerConfig(model="fork", port=0))
    starting = asyncio.create_task(lab.start())
    while not lab.server.spawned:
        await asyncio.sleep(0.001)
    [pid] = lab.server.spawned
    assert lab.server_pid is None  # no ready line yet: the stop below comes mid-start
    await lab.stop()
    with pytest.raises(LabError, match="did not start"):
        await starting
    assert session_pids(pid) == []


async def test_default_port_taken_falls_back_to_a_free_one():
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        lab = Lab(ServerConfig(model="serial", port=taken), port_fallback=True)
        await lab.start()
        try:
            assert lab.port not in (0, taken)
            update = await lab.sample()
            assert any(f"port {taken} is busy" in e.text for e in update.events)
        finally:
            await lab.stop()


async def test_explicit_busy_port_is_a_lab_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        lab = Lab(ServerConfig(model="serial", port=busy.getsockname()[1]), port_fallback=False)
        with pytest.raises(LabError, match="already in use"):
            await lab.start()


async def test_a_python_that_may_not_be_run_is_a_lab_error(tmp_path, monkeypatch):
    """As a user who may not run svcviz's interpreter (nobody, a venv under /root), the
    server cannot start: one LabError the dashboard says in a line, not a traceback."""
    unrunnable = tmp_path / "python3"
    unrunnable.write_text("#!/bin/sh\n")
    unrunnable.chmod(0o600)
    monkeypatch.setattr("svcviz.lab.supervisor.sys.executable", str(unrunnable))
    lab = Lab(ServerConfig(model="serial", port=0))
    try:
        with pytest.raises(LabError, match=r"cannot start the server \(.*python3\): Permission denied"):
            await lab.start()
    finally:
        await lab.stop()


async def test_clients_are_seen_by_the_observer(lab_of):
    lab = await lab_of("serial")
    await lab.add_clients(3)
    update = await next_update(lab, lambda u: u.snapshot.queue_length == 2)
    client_ports = {c.local_port for c in update.clients}
    assert {c.client_port for c in update.snapshot.connections} == client_ports
    assert listen_queue(lab.port)[0] == 2


async def test_sigchld_cycle_and_reap_now_reach_the_server(lab_of):
    lab = await lab_of("fork")
    await lab.add_clients(2)
    await next_update(lab, lambda u: len(u.snapshot.processes) == 3)
    await lab.close_all_clients()
    await next_update(lab, lambda u: len(u.snapshot.zombies) == 2)
    await lab.reap_now()
    await next_update(lab, lambda u: len(u.snapshot.processes) == 1)
    assert await lab.cycle_sigchld() == "ignore"
    await lab.add_clients(1)
    await next_update(lab, lambda u: len(u.snapshot.processes) == 2)
    await lab.close_all_clients()
    await next_update(lab, lambda u: len(u.snapshot.processes) == 1 and not u.snapshot.zombies)


async def test_killed_server_orphans_are_adopted_and_reaped(lab_of):
    lab = await lab_of("fork")
    await lab.add_clients(3)
    update = await next_update(lab, lambda u: len(u.snapshot.processes) == 4)
    kids = {p.pid for p in update.snapshot.processes if p.pid != lab.server_pid}
    await lab.kill_server()
    await next_update(lab, lambda u: u.status == "killed")
    assert wait_until(lambda: all(_ppid(pid) == os.getpid() for pid in kids))  # adopted by svcviz
    await next_update(lab, lambda u: {p.pid for p in u.snapshot.processes if p.adopted} == kids)
    await lab.close_all_clients()
    assert wait_until(lambda: all(_ppid(pid) is None for pid in kids))  # exited, and reaped here


async def test_server_errors_reach_the_consumer_as_events(lab_of):
    lab = await lab_of("fork", close_fd=False, max_fds=16, sigchld="reap")
    await lab.add_clients(16)
    update = await next_update(lab, lambda u: any("EMFILE" in e.text for e in u.events), timeout=8)
    assert any(e.kind == "error" for e in update.events)


async def test_a_cap_the_server_reaches_is_the_labs_cap_hit(lab_of):
    lab = await lab_of("fork", cap_procs=3, backlog=16)
    await lab.add_clients(4)  # room for 2 children: the server waits with the rest queued
    update = await next_update(lab, lambda u: u.cap_hit is not None)
    assert update.cap_hit.startswith("process cap (3 processes) reached (2)")
    assert [e.text for e in update.events if e.kind == "cap"] == [update.cap_hit]


async def test_switching_through_all_models_twice_leaves_nothing(lab_of):
    lab = await lab_of("serial")
    pids = set()
    for name in [*NAMES, *NAMES]:
        await lab.switch_model(name)
        pids.add(lab.server_pid)
        await lab.add_clients(3)
        await lab.sample()
    await lab.stop()
    assert all(session_pids(pid) == [] for pid in pids)
    assert listen_queue(lab.port) is None


async def test_fork_blasted_never_passes_the_cap_and_a_shell_still_starts(lab_of):
    lab = await lab_of("fork", cap_procs=64, backlog=64)
    await lab.blast(1000)
    most = 0
    for _ in range(20):
        update = await lab.sample()
        most = max(most, len(update.snapshot.processes), len(children(lab.server_pid)) + 1)
        await asyncio.sleep(0.05)
    assert 1 < most <= 64
    # fork() still works for others (no EAGAIN from a full process table): how fast the shell
    # starts is the loaded machine's business, not the lesson's.
    subprocess.run(["sh", "-c", "true"], check=True, timeout=30)


LAB_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from svcviz.lab import Lab
    from svcviz.servers.config import ServerConfig

    async def main():
        # A backlog the 20 fit in: with the default 8, an overflowed handshake waits out
        # the kernel's SYN-ACK retries (1 s, 3 s, 7 s) before its child is forked.
        lab = Lab(ServerConfig(model="fork", port=0, backlog=64))
        await lab.start()
        await lab.add_clients(20)
        for _ in range(200):
            update = await lab.sample()
            if len(update.snapshot.processes) == 21:
                break
            await asyncio.sleep(0.05)
        print(lab.server_pid, lab.port, flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP, signal.SIGTERM])
def test_killing_svcviz_leaves_nothing(sig):
    # The default SIGHUP, whatever ours is: under nohup it is ignored, and inherited so.
    proc = subprocess.Popen(
        [sys.executable, "-c", LAB_SCRIPT],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        server_pid, port = map(int, proc.stdout.readline().split())
        assert len(session_pids(server_pid)) == 21
        proc.send_signal(sig)
        proc.wait(5)

        def gone():
            reap_adopted_zombies()  # the server's zombie, orphaned to us as it would be to init
            return session_pids(server_pid) == [] and listen_queue(port) is None

        assert wait_until(gone, timeout=2.0)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


ORPHANS_SCRIPT = textwrap.dedent("""
    import asyncio
    from svcviz.lab import Lab
    from svcviz.servers.config import ServerConfig

    async def main():
        lab = Lab(ServerConfig(model="fork", port=0, backlog=64))
        await lab.start()
        print(lab.port, flush=True)  # the test connects 5 clients of its own, as `svcviz blast`
        for _ in range(200):
            update = await lab.sample()
            if len(update.snapshot.processes) == 6:
                break
            await asyncio.sleep(0.05)
        kids = [p.pid for p in update.snapshot.processes if p.pid != lab.server_pid]
        await lab.kill_server()  # the dashboard's `k`
        for _ in range(200):
            update = await lab.sample()
            if {p.pid for p in update.snapshot.processes if p.adopted} == set(kids):
                break
            await asyncio.sleep(0.05)
        print(*kids, flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


def test_orphans_adopted_after_k_die_with_svcviz():
    """After `k` the orphans live on, adopted by svcviz and shown (the lesson); when svcviz
    is SIGKILLed then, they die too and the port is free: nothing svcviz started outlives it."""
    proc = subprocess.Popen([sys.executable, "-c", ORPHANS_SCRIPT], stdout=subprocess.PIPE, text=True)
    held = []
    try:
        port = int(proc.stdout.readline())
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
        kids = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(kids) == 5 and all(_ppid(pid) == proc.pid for pid in kids)  # adopted by svcviz, alive
        assert listen_queue(port) is not None  # the orphans still hold the listening socket
        proc.kill()
        proc.wait(5)

        def gone():
            reap_adopted_zombies()
            return all(_ppid(pid) is None for pid in kids) and listen_queue(port) is None

        assert wait_until(gone, timeout=3.0), [(pid, _ppid(pid)) for pid in kids]
    finally:
        for sock in held:
            sock.close()
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _ppid(pid: int) -> int | None:
    stat = read_stat(pid)
    return None if stat is None or stat.zombie else stat.ppid


async def test_sigchld_controls_are_refused_on_models_that_would_die_of_them(lab_of):
    lab = await lab_of("serial")
    with pytest.raises(LabError, match="fork"):
        await lab.cycle_sigchld()
    with pytest.raises(LabError, match="fork"):
        await lab.reap_now()
    assert (await lab.sample()).status == "running"


async def test_add_clients_says_which_were_added_even_past_the_cap(lab_of):
    lab = await lab_of("event")
    lab.fleet.cap = 5
    first = await lab.add_clients(3)
    more = await lab.add_clients(4)
    assert len(first) == 3 and len(more) == 2 and set(first).isdisjoint(more)
    update = await lab.sample()
    assert update.cap_hit == "client cap reached: 5 clients"
    assert any(e.kind == "cap" for e in update.events)
    assert sorted(c.id for c in update.clients) == sorted(first + more)


def restart_on_the_same_port(serve, server):
    """Stop the server, and start another on its port: what a student does after a crash.
    (The port is the one the first server was given: a fixed port, on purpose.)"""
    server.proc.kill()
    server.proc.wait()
    return serve("serial", "--port", str(server.port))


async def test_an_observer_watching_a_port_follows_the_restarted_server(serve):
    first = serve("serial")
    with Observer(port=first.port) as observer:
        assert observer.sample().root_pid == first.pid
        second = restart_on_the_same_port(serve, first)
        snapshot = wait_until(lambda: (s := observer.sample()).root_pid == second.pid and s.listen and s)
        assert snapshot.root_pid == second.pid, "the observer kept the dead server"
        assert [p.pid for p in snapshot.processes] == [second.pid]
        assert [sock.port for sock in snapshot.listen] == [first.port]


async def test_a_lab_watching_a_port_says_the_server_restarted(serve):
    first = serve("serial")
    lab = Lab.attach(port=first.port)
    await lab.start()
    try:
        await lab.sample()
        second = restart_on_the_same_port(serve, first)
        said = []
        await next_update(lab, lambda u: said.extend(e.text for e in u.events) or u.server_pid == second.pid)
        assert f"server restarted: pid {first.pid} -> {second.pid}" in said
        assert lab.status == "watching" and lab.server_pid == second.pid
        await lab.add_clients(1)
        # The new server's connections are seen (they were not: the panels said nobody listened).
        await next_update(
            lab, lambda u: any(c.pid == second.pid and c.state == "accepted" for c in u.snapshot.connections)
        )
    finally:
        await lab.stop()


async def test_a_lab_watching_a_pid_says_it_is_gone_and_who_listens_now(serve):
    first = serve("serial")
    lab = Lab.attach(pid=first.pid)
    await lab.start()
    try:
        await lab.sample()
        second = restart_on_the_same_port(serve, first)
        said = []
        update = await next_update(
            lab, lambda u: said.extend(e.text for e in u.events) or f"pid {second.pid}" in u.status
        )
        assert update.status == (
            f"gone: pid {second.pid} listens on port {first.port} now (svcviz watch --port {first.port} follows it)"
        )
        assert update.server_pid == first.pid and any(f"process {first.pid} is gone" in text for text in said)
    finally:
        await lab.stop()


async def test_a_lab_attached_to_a_thread_id_watches_its_process_and_says_so(serve):
    server = serve("threadpool")
    # Its workers may start just after its ready line.
    tids = wait_until(lambda: [tid for tid in map(int, os.listdir(f"/proc/{server.pid}/task")) if tid != server.pid])
    tid = tids[0]
    lab = Lab.attach(pid=tid)
    await lab.start()
    try:
        update = await lab.sample()
        assert lab.server_pid == server.pid == update.snapshot.root_pid
        assert f"{tid} is a thread of process {server.pid}: watching process {server.pid}" in [
            e.text for e in update.events
        ]
    finally:
        await lab.stop()
