"""The observer on real servers (our models), every figure checked against ss, ps and /proc."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess

import pytest

from conftest import wait_until
from kernel import children, connect, listen_queue, socket_fds, tcp_states, threads
from svcviz.observe.events import diff
from svcviz.observe.observer import Observer
from svcviz.observe.sockdiag import ALL_STATES, TABLED_STATES, SockDiag
from svcviz.procstat import all_stats


@pytest.fixture
def clients():
    """connect(port) -> socket; all closed when the test ends."""
    opened: list[socket.socket] = []

    def open_one(port: int, host: str = "127.0.0.1") -> socket.socket:
        sock = socket.create_connection((host, port), timeout=5) if host != "127.0.0.1" else connect(port)
        opened.append(sock)
        return sock

    yield open_one
    for sock in opened:
        sock.close()


@pytest.fixture
def observe():
    """observe(**target) -> Observer, closed when the test ends."""
    made: list[Observer] = []

    def make(**target) -> Observer:
        made.append(Observer(**target))
        return made[-1]

    yield make
    for observer in made:
        observer.close()


def sample_until(observer: Observer, predicate, timeout: float = 15.0):
    """The first snapshot that satisfies predicate; past the timeout, a failure that shows
    the last snapshot's connections and fds (a loaded machine is slow, not wrong: the
    timeout is generous because waiting costs nothing when the condition comes)."""
    taken = []

    def check():
        taken.append(observer.sample())
        return predicate(taken[-1])

    if not wait_until(check, timeout):
        last = taken[-1]
        fds = {p.pid: [(fd.fd, fd.kind, fd.peer) for fd in p.fds if fd.inode] for p in last.processes}
        pytest.fail(f"no sample in {timeout} s satisfied the condition; last: {last.connections} fds {fds}")
    return taken[-1]


def states(snapshot) -> list[str]:
    return sorted(c.state for c in snapshot.connections)


def local_port(sock: socket.socket) -> int:
    return sock.getsockname()[1]


def test_serial_serves_one_and_queues_the_rest(serve, clients, observe):
    server = serve("serial", "--backlog", "8")
    observer = observe(port=server.port)
    assert (observer.root_pid, observer.ports, observer.port) == (server.pid, (server.port,), server.port)
    mine = [clients(server.port) for _ in range(4)]
    # the listen row and the connection rows are read one after the other: wait for both to agree
    snapshot = sample_until(
        observer, lambda s: states(s) == ["accepted", "queued", "queued", "queued"] and s.queue_length == 3
    )
    assert states(snapshot) == ["accepted", "queued", "queued", "queued"]
    (listen,) = snapshot.listen
    assert (listen.queue, listen.backlog) == listen_queue(server.port) == (3, 8)
    assert (listen.pid, listen.addr) == (server.pid, f"127.0.0.1:{server.port}")
    assert tcp_states(server.port).count("ESTAB") == 4
    accepted = next(c for c in snapshot.connections if c.state == "accepted")
    assert accepted.client_port == local_port(mine[0])  # the first to come is the one served
    assert accepted.pid == server.pid
    assert os.readlink(f"/proc/{server.pid}/fd/{accepted.fd}").startswith("socket:[")
    assert all(c.pid is None and c.fd is None for c in snapshot.connections if c.state == "queued")
    fds = {fd.fd: fd for fd in snapshot.process(server.pid).fds}
    assert fds[listen.fd].kind == "listen"
    assert fds[accepted.fd].kind == "conn" and fds[accepted.fd].peer == accepted.client
    assert sum(fd.inode is not None for fd in fds.values()) == socket_fds(server.pid)


def test_fork_children_zombies_and_their_events(serve, clients, observe):
    server = serve("fork")
    observer = observe(pid=server.pid)
    quiet = observer.sample()
    first, second = clients(server.port), clients(server.port)
    two = sample_until(observer, lambda s: len(s.processes) == 3 and states(s) == ["accepted", "accepted"])
    assert {p.pid for p in two.processes} - {server.pid} == set(children(server.pid))
    events = diff(quiet, two)
    # The parent accepts, then forks: one accept event each, naming the child that serves it
    # (a child born holding its connection is said there, not again as a bare fork).
    accepts = [e for e in events if e.kind == "accept"]
    assert len(accepts) == 2 and not [e for e in events if e.kind == "fork"]
    assert {int(e.text.split("; child ")[1].split()[0]) for e in accepts} == set(children(server.pid))
    owners = {c.client_port: c.pid for c in two.connections}
    assert set(owners.values()) == set(children(server.pid))  # each child serves its own client

    zombie_pid = owners[local_port(first)]
    first.close()
    one_zombie = sample_until(observer, lambda s: len(s.zombies) == 1)
    assert [p.pid for p in one_zombie.zombies] == [zombie_pid]
    assert one_zombie.process(zombie_pid).state == "Z" == children(server.pid)[zombie_pid]
    assert one_zombie.process(zombie_pid).thread_count == 0
    assert [e.text for e in diff(two, one_zombie) if e.kind == "exit"] == [
        f"exit {zombie_pid}: zombie until its parent {server.pid} waits"
    ]

    os.kill(server.pid, signal.SIGUSR2)  # the fork model reaps every zombie now
    reaped = sample_until(observer, lambda s: not s.zombies and len(s.processes) == 2)
    assert zombie_pid not in children(server.pid)
    assert [e.pid for e in diff(one_zombie, reaped) if e.kind == "reaped"] == [zombie_pid]
    assert second.fileno() >= 0


def test_thread_server_threads_grow_and_each_serves_one_client(serve, clients, observe):
    server = serve("thread")
    observer = observe(pid=server.pid)
    alone = observer.sample()
    assert alone.thread_total == threads(server.pid) == 1
    mine = [clients(server.port) for _ in range(3)]
    snapshot = sample_until(observer, lambda s: s.thread_total == 4 and all(c.tid for c in s.connections))
    process = snapshot.process(server.pid)
    assert process.thread_count == threads(server.pid) == 4
    assert {t.tid for t in process.threads} == {int(t) for t in os.listdir(f"/proc/{server.pid}/task")}
    serving = {c.client_port: c.tid for c in snapshot.connections}
    assert set(serving) == {local_port(s) for s in mine}
    assert len(set(serving.values())) == 3 and server.pid not in serving.values()  # one worker thread each
    started = sorted(e.text.split()[1] for e in diff(alone, snapshot) if e.kind == "thread_start")
    assert started == sorted(str(tid) for tid in serving.values())


def test_fork_leak_fd_parent_holds_every_connection(serve, clients, observe):
    server = serve("fork", "--leak-fd")
    observer = observe(pid=server.pid)
    mine = [clients(server.port) for _ in range(2)]
    snapshot = sample_until(observer, lambda s: len(s.processes) == 3 and states(s) == ["accepted", "accepted"])
    parent = snapshot.process(server.pid)
    held = sorted(int(fd.peer.rsplit(":", 1)[1]) for fd in parent.fds if fd.kind == "conn")
    assert held == sorted(local_port(s) for s in mine)
    assert socket_fds(server.pid) == 3  # listen + the two leaked connections
    # each connection is served by a child, not by the parent that only forgot to close it
    assert {c.pid for c in snapshot.connections} == set(children(server.pid))


def test_full_backlog_leaves_the_client_in_syn_sent(serve, clients, observe):
    server = serve("listen-only", "--backlog", "1")
    observer = observe(port=server.port)
    for _ in range(2):  # the queue holds backlog+1
        clients(server.port)
    wait_until(lambda: listen_queue(server.port) == (2, 1))
    knocking = socket.socket()
    knocking.setblocking(False)
    try:
        assert knocking.connect_ex(("127.0.0.1", server.port)) == errno.EINPROGRESS
        snapshot = sample_until(observer, lambda s: "syn_sent" in states(s))
        waiting = [c for c in snapshot.connections if c.state == "syn_sent"]
        assert [c.client_port for c in waiting] == [local_port(knocking)]
        assert waiting[0].tcp_state == "SYN_SENT" and waiting[0].pid is None
        assert states(snapshot).count("queued") == snapshot.queue_length == 2
        later = sample_until(
            observer, lambda s: s.counters.listen_overflows > snapshot.counters.listen_overflows, timeout=10
        )  # the SYN is sent again after ~1 s, and dropped again
        assert later.counters.listen_overflows > snapshot.counters.listen_overflows
        assert "dropped" in [e.kind for e in diff(snapshot, later)]
    finally:
        knocking.close()


def test_orphans_stay_adopted_when_the_server_is_killed(serve, clients, observe):
    server = serve("fork")
    observer = observe(pid=server.pid)
    clients(server.port)
    before = sample_until(observer, lambda s: len(s.processes) == 2)
    child = next(p.pid for p in before.processes if p.pid != server.pid)
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(5)
    try:
        after = sample_until(observer, lambda s: s.process(server.pid) is None)
        # pytest is a child subreaper (conftest): the orphan is its child now
        assert [(p.pid, p.adopted, p.ppid) for p in after.processes] == [(child, True, os.getpid())]
        assert "adopted" in [e.kind for e in diff(before, after)]
        assert [s.pid for s in after.listen] == [child]  # it inherited the listening socket
    finally:
        os.kill(child, signal.SIGKILL)


def test_ipv6_listener_and_connections(serve, clients, observe):
    if not socket.has_ipv6 or not os.path.exists("/proc/net/tcp6"):
        pytest.skip("no IPv6 here")
    server = serve("serial", "--host", "::1")
    observer = observe(port=server.port)
    clients(server.port, "::1"), clients(server.port, "::1")
    snapshot = sample_until(observer, lambda s: states(s) == ["accepted", "queued"] and s.queue_length == 1)
    assert [s.addr for s in snapshot.listen] == [f"[::1]:{server.port}"]
    assert all(c.server == f"[::1]:{server.port}" and c.client.startswith("[::1]:") for c in snapshot.connections)
    assert snapshot.listen[0].queue == listen_queue(server.port)[0] == 1


def test_proc_net_tcp_fallback_sees_what_netlink_sees(serve, clients, observe):
    server = serve("serial", "--backlog", "4")
    for _ in range(3):
        clients(server.port)
    by_netlink = observe(pid=server.pid)
    by_text = observe(pid=server.pid, netlink=False)

    def agree(snapshot) -> bool:
        return states(snapshot) == ["accepted", "queued", "queued"] and snapshot.queue_length == 2

    fast = sample_until(by_netlink, agree)
    slow = sample_until(by_text, agree)
    assert slow.connections == fast.connections
    assert slow.process(server.pid).fds == fast.process(server.pid).fds
    assert [(s.addr, s.queue, s.pid, s.fd) for s in slow.listen] == [
        (s.addr, s.queue, s.pid, s.fd) for s in fast.listen
    ]
    assert (fast.listen[0].backlog, slow.listen[0].backlog) == (4, 0)  # /proc/net/tcp does not show it


def test_a_child_reusing_an_outsiders_pid_is_seen(serve, clients, observe):
    """The observer skips processes it saw outside the tree; a child that gets the pid of one
    that died must still be found. ns_last_pid (root) makes the kernel hand out that pid."""
    if not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK):
        pytest.skip("needs write access to /proc/sys/kernel/ns_last_pid")
    server = serve("fork")
    observer = observe(pid=server.pid)
    for tries in range(1, 6):  # another process on the machine may take the pid first: try again
        outsider = subprocess.Popen(["sleep", "30"])
        observer.sample()  # seen, outside the tree
        outsider.kill()
        outsider.wait()
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(outsider.pid - 1))
        clients(server.port)  # the server forks a child for it: that pid, if nobody forked first
        wait_until(lambda tries=tries: len(child_pids(server.pid)) == tries)
        if outsider.pid in child_pids(server.pid):
            break
    else:
        pytest.skip("the pid went to another process each time")
    snapshot = sample_until(observer, lambda s: s.process(outsider.pid) is not None, timeout=10)
    assert snapshot.process(outsider.pid).ppid == server.pid


def child_pids(pid: int) -> set[int]:
    """From /proc directly: ps would fork, and take the pid the test wants the server to get."""
    return {stat.pid for stat in all_stats() if stat.ppid == pid}


def test_fd_changes_of_a_sleeping_server_are_seen(serve, observe):
    """The observer skips re-reading the fds of a process that has not run since; one that
    woke to accept or close must be read again (fd_open and fd_close from real samples)."""
    server = serve("serial")
    observer = observe(pid=server.pid)
    idle = sample_until(observer, lambda s: s.process(server.pid).state == "S")
    idle_again = observer.sample()
    assert idle_again.process(server.pid).fds == idle.process(server.pid).fds
    client = connect(server.port)
    with client:
        # A sample can see the kernel's accepted connection before the fd that accept()
        # returned (its fd tables are read first): wait for both. A table wrongly kept from
        # before the accept would never show the fd.
        serving = sample_until(observer, lambda s: states(s) == ["accepted"] and s.connections[0].fd is not None)
        conn_fd = serving.connections[0].fd
        opened = [e for e in diff(idle_again, serving) if e.kind == "fd_open" and "connection" in e.text]
        assert [(e.pid, e.text.split()[1]) for e in opened] == [(server.pid, str(conn_fd))]
        assert os.readlink(f"/proc/{server.pid}/fd/{conn_fd}").startswith("socket:[")
    closed = sample_until(observer, lambda s: all(fd.kind != "conn" for fd in s.process(server.pid).fds))
    # Only the connection's close: the server loads its database before it says it is ready,
    # so no request opens /etc/services (a sample once caught that file open and closed).
    assert [e.text for e in diff(serving, closed) if e.kind == "fd_close"] == [
        f"fd {conn_fd} closed in {server.pid} (connection from {serving.connections[0].client})"
    ]
    assert not os.path.exists(f"/proc/{server.pid}/fd/{conn_fd}")


def test_wildcard_listener_owns_its_connections(serve, clients, observe):
    server = serve("serial", "--host", "0.0.0.0")
    observer = observe(port=server.port)
    clients(server.port), clients(server.port)
    snapshot = sample_until(observer, lambda s: states(s) == ["accepted", "queued"] and s.queue_length == 1)
    assert [s.addr for s in snapshot.listen] == [f"0.0.0.0:{server.port}"]
    assert {c.server for c in snapshot.connections} == {f"127.0.0.1:{server.port}"}
    assert tcp_states(server.port).count("ESTAB") == 2


def test_the_same_fd_number_taking_the_next_client_is_seen(serve, clients, observe):
    """Serial: when the first client quits, the server accepts the queued one, usually
    into the same fd number. The observer reuses what did not change between samples; the
    same fd with a new socket behind it must not be mistaken for the old one."""
    server = serve("serial")
    observer = observe(pid=server.pid)
    first, second = clients(server.port), clients(server.port)
    before = sample_until(observer, lambda s: states(s) == ["accepted", "queued"])
    [conn] = [fd for fd in before.process(server.pid).fds if fd.kind == "conn"]
    assert conn.peer.endswith(f":{local_port(first)}")
    observer.sample()  # one more sample with nothing changed: the reuse path is taken
    first.close()
    # Until its owner is known: a sample reads the fd tables a moment before the kernel's
    # connections and reads them again once when that shows an accept they missed; an
    # accept during that second read is seen by the next sample.
    after = sample_until(
        observer,
        lambda s: (
            states(s) == ["accepted"]
            and s.connections[0].client_port == local_port(second)
            and s.connections[0].pid is not None
        ),
    )
    [now] = [fd for fd in after.process(server.pid).fds if fd.kind == "conn"]
    assert now.peer.endswith(f":{local_port(second)}") and now.inode != conn.inode
    assert (after.connections[0].pid, after.connections[0].fd) == (server.pid, now.fd)
    assert socket_fds(server.pid) == sum(1 for fd in after.process(server.pid).fds if fd.inode)


def test_the_port_filtered_dump_returns_what_an_unfiltered_one_has_on_the_port():
    """The kernel's bytecode filter: the listener and its connections, in every state, of
    the ports asked for, exactly as the whole table shows them, and nothing of another port."""
    listeners, held = [], []
    try:
        for _ in range(3):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            listeners.append(listener)
            for _ in range(2):
                held.append(socket.create_connection(listener.getsockname()))
            held.append(listener.accept()[0])  # one accepted, one left in the queue
        held[0].close()  # a client gone: its server side in CLOSE_WAIT, its own in FIN_WAIT2
        ports = [listener.getsockname()[1] for listener in listeners]
        bound = socket.socket()  # merely bound to the first port (on another address): no connection
        held.append(bound)
        bound.bind(("127.0.0.2", ports[0]))
        key = lambda row: (row.local, row.remote, row.state, row.inode)  # noqa: E731
        with SockDiag() as diag:
            every = diag.dump(socket.AF_INET, ALL_STATES)
            for asked in ([ports[0]], [ports[0], ports[2]], ports):
                filtered = diag.dump(socket.AF_INET, ALL_STATES, sports=tuple(asked))
                expected = [row for row in every if row.local_port in asked]
                assert sorted(map(key, filtered)) == sorted(map(key, expected))
                assert {row.state for row in filtered} >= {"LISTEN", "ESTABLISHED", "CLOSE_WAIT"}
                assert all(row.local_port in asked for row in filtered)
                # What the observer asks for: the same less the merely bound socket (CLOSE, no
                # peer: the kernel's bind table is not walked for it).
                tabled = diag.dump(socket.AF_INET, TABLED_STATES, sports=tuple(asked))
                bound_only = [row for row in expected if row.state == "CLOSE" and not row.remote_port]
                assert sorted(map(key, tabled)) == sorted(map(key, (row for row in expected if row not in bound_only)))
            assert any(row.local == f"127.0.0.2:{ports[0]}" and row.state == "CLOSE" for row in every)
    finally:
        for sock in held + listeners:
            sock.close()


def test_a_still_server_is_seen_to_change_at_the_very_next_sample(serve, clients, observe):
    """While no process of the tree runs and no segment moves (the Tcp MIB), a sample reuses
    the last dump of the port's sockets; each change below is one of those two, and the one
    sample after it must show it (no sample_until: waiting would hide a stale reuse)."""
    server = serve("serial")
    observer = observe(pid=server.pid)
    first = clients(server.port)
    sample_until(observer, lambda s: states(s) == ["accepted"])
    observer.sample(), observer.sample()  # still now: the server waits in recv
    second = clients(server.port)  # segments only: the server does not run
    assert wait_until(lambda: tcp_states(server.port).count("ESTAB") == 2)
    assert states(observer.sample()) == ["accepted", "queued"]
    observer.sample()
    second.close()  # a FIN: the queued connection is CLOSE-WAIT on the server's side
    assert wait_until(lambda: "CLOSE-WAIT" in tcp_states(server.port))
    assert states(observer.sample()) == ["accepted", "closing"]
    third = clients(server.port)
    assert wait_until(lambda: tcp_states(server.port).count("ESTAB") == 2)
    observer.sample()
    first.close()  # the server reads EOF, closes, and accepts the next: it ran
    assert wait_until(lambda: local_port(third) in accepted_ports(server.port))
    snapshot = observer.sample()
    assert [(c.state, c.client_port) for c in snapshot.connections if c.state == "accepted"] == [
        ("accepted", local_port(third))
    ]


def accepted_ports(port: int) -> set[int]:
    """Client ports of the connections the server holds an fd for (ss -p names a process)."""
    rows = subprocess.run(["ss", "-Htnp", f"sport = :{port}"], capture_output=True, text=True).stdout.splitlines()
    return {int(row.split()[4].rsplit(":", 1)[1]) for row in rows if "users:" in row and "ESTAB" in row}


def kept_proc_files() -> dict[int, set[str]]:
    """pid -> the /proc/PID files this process holds open (the observer's kept stat and schedstat)."""
    held: dict[int, set[str]] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        parts = target.split("/")
        if len(parts) == 4 and parts[1] == "proc" and parts[2].isdigit():
            held.setdefault(int(parts[2]), set()).add(parts[3])
    return held


def test_kept_files_are_the_trees_own_and_closed_with_it(serve, clients, observe):
    """Every process's stat is read through a kept fd from its first read, the machine's
    included: those found outside the tree close theirs at once, a child that exits its
    own, and close() the rest. Only the tree's stat and schedstat stay open."""
    server = serve("fork")
    mine = [clients(server.port) for _ in range(3)]
    before = kept_proc_files()
    observer = observe(pid=server.pid)
    snapshot = sample_until(observer, lambda s: len(s.processes) == 4)
    pids = {p.pid for p in snapshot.processes}
    held = {pid: files for pid, files in kept_proc_files().items() if pid not in before}
    assert held == {pid: {"stat", "schedstat"} for pid in pids}
    mine[0].close()  # its child serves EOF and exits
    snapshot = sample_until(observer, lambda s: len([p for p in s.processes if p.state != "Z"]) == 3)
    live = {p.pid for p in snapshot.processes}
    held = {pid: files for pid, files in kept_proc_files().items() if pid not in before}
    assert set(held) <= live and set(held) >= {p.pid for p in snapshot.processes if p.state != "Z"}
    observer.close()
    assert {pid for pid in kept_proc_files() if pid not in before} == set()
