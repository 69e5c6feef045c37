"""Each model does what the lecture says, judged from the kernel (ss, ps, /proc)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import struct
import time

import pytest

from conftest import wait_until
from kernel import ask, children, connect, listen_queue, readline, socket_fds, tcp_states, threads, zombies
from svcviz.observe.syscalls import NUMBERS
from svcviz.servers.notice import CAP, ERROR, parse_notice

NUMBERS_BY_NAME = {name: number for number, (name, _) in NUMBERS.items()}


@pytest.fixture
def clients():
    """connect(port) -> socket; all closed when the test ends."""
    opened: list[socket.socket] = []

    def open_one(port: int, timeout: float = 5.0) -> socket.socket:
        sock = connect(port, timeout)
        opened.append(sock)
        return sock

    yield open_one
    for sock in opened:
        sock.close()


def notices(server, kind: str) -> list[str]:
    """What the server said on stderr as notices of kind, parsed as the lab parses them."""
    parsed = [parse_notice(line) for line in server.stderr_text().splitlines()]
    return [notice.text for notice in parsed if notice and notice.kind == kind]


def refused(port: int) -> bool:
    try:
        connect(port, timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_listen_only_queues_everyone_and_serves_no_one(serve, clients):
    server = serve("listen-only", "--backlog", "2")
    waiting = [clients(server.port) for _ in range(3)]  # backlog 2: the queue holds 3
    for sock in waiting:
        sock.sendall(b"discard\n")
    assert wait_until(lambda: listen_queue(server.port) == (3, 2))
    waiting[0].settimeout(0.3)
    with pytest.raises(TimeoutError):
        waiting[0].recv(100)
    server.proc.terminate()
    assert "Transport endpoint is not connected (ENOTCONN)" in server.stderr_text()


def test_accept_once_serves_one_then_refuses(serve, clients):
    server = serve("accept-once")
    first = clients(server.port)
    assert ask(first, "discard") == "discard,9"
    assert wait_until(lambda: listen_queue(server.port) is None)  # the listening socket is gone
    assert refused(server.port)
    first.close()
    assert server.proc.wait(5) == 0


def test_relisten_refuses_clients_that_arrive_mid_service(serve, clients):
    server = serve("relisten")
    first = clients(server.port)
    assert ask(first, "discard") == "discard,9"
    assert refused(server.port)
    first.close()
    assert wait_until(lambda: listen_queue(server.port) is not None)  # listening anew
    assert ask(clients(server.port), "smtp") == "smtp,25"


def test_serial_queues_later_clients_and_serves_them_in_order(serve, clients):
    server = serve("serial")
    first = clients(server.port)
    assert ask(first, "discard") == "discard,9"
    second, third = clients(server.port), clients(server.port)
    second.sendall(b"smtp\n")
    third.sendall(b"ssh\n")
    assert wait_until(lambda: listen_queue(server.port) == (2, 8))
    assert sorted(tcp_states(server.port)) == ["ESTAB"] * 3  # queued ones are established too
    first.close()
    assert readline(second) == "smtp,25"
    assert listen_queue(server.port)[0] == 1  # third still waits: served in arrival order
    second.close()
    assert readline(third) == "ssh,22"


def test_serial_keeps_serving_after_hostile_input(serve, clients):
    server = serve("serial")
    hostile = clients(server.port)
    hostile.sendall(b"x" * (1 << 20))  # a megabyte without a newline
    hostile.sendall(b"\n\xff\xfe\n\n\x01\x02\ndiscard\r\n")
    assert readline(hostile) == "error: line too long (max 1024 bytes)"
    assert readline(hostile) == "error: not a service name"
    assert readline(hostile) == "error: not a service name"
    assert readline(hostile) == "discard,9"
    hostile.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    hostile.sendall(b"half a li")
    hostile.close()  # a reset mid-line
    assert ask(clients(server.port), "echo") == "echo,7"


def test_fork_serves_clients_in_parallel(serve, clients):
    server = serve("fork")
    a, b = clients(server.port), clients(server.port)
    assert ask(b, "smtp") == "smtp,25"  # the second is served while the first stays open
    assert ask(a, "discard") == "discard,9"
    assert wait_until(lambda: len(children(server.pid)) == 2)  # three processes for two telnets


def test_fork_default_leaves_zombies_and_sigusr2_reaps_them(serve, clients):
    server = serve("fork", "--sigchld", "default")
    for _ in range(3):
        sock = clients(server.port)
        ask(sock, "discard")
        sock.close()
    assert wait_until(lambda: zombies(server.pid) == 3)
    server.proc.send_signal(signal.SIGUSR2)
    assert wait_until(lambda: children(server.pid) == {})


@pytest.mark.parametrize("mode", ["ignore", "reap"])
def test_fork_ignore_and_reap_leave_no_zombies(serve, clients, mode):
    server = serve("fork", "--sigchld", mode)
    for _ in range(3):
        sock = clients(server.port)
        ask(sock, "discard")
        sock.close()
    assert wait_until(lambda: children(server.pid) == {})


def test_fork_sigusr1_cycles_sigchld_live_and_ignore_keeps_old_zombies(serve, clients):
    server = serve("fork")
    sock = clients(server.port)
    ask(sock, "discard")
    sock.close()
    assert wait_until(lambda: zombies(server.pid) == 1)
    server.proc.send_signal(signal.SIGUSR1)  # default -> ignore
    time.sleep(0.1)
    sock = clients(server.port)
    ask(sock, "discard")
    sock.close()
    # the new child vanishes on its own; the zombie from before ignore stays
    assert wait_until(lambda: len(children(server.pid)) == 1 and zombies(server.pid) == 1)
    time.sleep(0.2)
    assert zombies(server.pid) == 1
    server.proc.send_signal(signal.SIGUSR1)  # ignore -> reap
    time.sleep(0.1)
    sock = clients(server.port)
    ask(sock, "discard")
    sock.close()  # the reap handler waits for this child, and the old zombie with it
    assert wait_until(lambda: children(server.pid) == {})
    server.proc.terminate()
    said = server.stderr_text()
    assert "SIGCHLD handling: ignore" in said and "SIGCHLD handling: reap" in said


def test_fork_leak_fd_grows_the_parent_fd_table_and_never_sends_eof(serve, clients):
    server = serve("fork", "--leak-fd", "--sigchld", "reap")
    before = socket_fds(server.pid)
    half = clients(server.port)
    half.sendall(b"discard\n")
    half.shutdown(socket.SHUT_WR)  # echo discard | nc
    assert readline(half) == "discard,9"
    assert wait_until(lambda: children(server.pid) == {})  # the child is done and gone
    assert socket_fds(server.pid) == before + 1
    half.settimeout(0.5)
    with pytest.raises(TimeoutError):  # no EOF: the parent still holds the connection
        half.recv(100)


def test_fork_leak_fd_hits_emfile_at_max_fds(serve, clients):
    server = serve("fork", "--leak-fd", "--sigchld", "reap", "--max-fds", "16")
    for _ in range(16):
        clients(server.port)
    # the fd table full, the parent cannot accept: the rest stay in the queue
    assert wait_until(lambda: len(os.listdir(f"/proc/{server.pid}/fd")) == 16)
    assert wait_until(lambda: listen_queue(server.port)[0] > 0)
    server.proc.terminate()
    assert "accept: Too many open files (EMFILE)" in notices(server, ERROR)


def test_fork_process_cap_is_never_exceeded(serve, clients):
    server = serve("fork", "--cap-procs", "4", "--backlog", "16")
    for _ in range(8):
        clients(server.port).sendall(b"discard\n")
    assert wait_until(lambda: len(children(server.pid)) == 3)
    time.sleep(0.3)
    assert len(children(server.pid)) == 3
    assert listen_queue(server.port)[0] == 5
    server.proc.terminate()
    assert any(text.startswith("process cap (4 processes) reached (3)") for text in notices(server, CAP))


@pytest.mark.parametrize("mode", ["reap", "ignore", "default"])
def test_fork_at_its_cap_sleeps_until_a_child_goes_then_serves_the_next(serve, clients, mode):
    """At --max-children the parent blocks for SIGCHLD (no polling: it stays still for the
    observer and the tracer), and the next client is served once a child's slot is free:
    at its exit (reap, ignore), or once its zombie is reaped (default, SIGUSR2)."""
    server = serve("fork", "--max-children", "2", "--sigchld", mode)
    first, second, third = (clients(server.port) for _ in range(3))
    assert wait_until(lambda: len(children(server.pid)) == 2 and listen_queue(server.port)[0] == 1)
    syscall = open(f"/proc/{server.pid}/syscall").read().split()[0]
    assert syscall == str(NUMBERS_BY_NAME["rt_sigtimedwait"])
    first.close()
    if mode == "default":  # its zombie keeps the slot until someone reaps it
        assert wait_until(lambda: zombies(server.pid) == 1)
        time.sleep(0.3)
        assert listen_queue(server.port)[0] == 1
        os.kill(server.pid, signal.SIGUSR2)
    assert ask(third, "discard") == "discard,9"
    assert ask(second, "discard") == "discard,9"


def test_thread_adds_a_thread_per_client(serve, clients):
    server = serve("thread")
    base = threads(server.pid)
    held = [clients(server.port) for _ in range(5)]
    for sock in held:
        assert ask(sock, "discard") == "discard,9"
    assert threads(server.pid) == base + 5
    assert children(server.pid) == {}


def test_thread_creation_fails_under_max_memory_and_serving_goes_on(serve, clients):
    server = serve("thread", "--max-memory", "100")
    held = []
    for _ in range(40):  # 8 MB of stack each: the address space runs out well before 40
        held.append(clients(server.port))
    assert wait_until(lambda: listen_queue(server.port)[0] == 0)
    working = [sock for sock in held if answered(sock, "discard", "discard,9")]
    assert 0 < len(working) < 40
    # At the limit, a thread already serving may be the one whose next buffer does not fit:
    # it says so and closes its connection. The others go on serving.
    served = [sock for sock in working if answered(sock, "discard", "discard,9")]
    assert served and threads(server.pid) <= 1 + len(served)
    server.proc.terminate()
    said = notices(server, ERROR)
    assert any(text.startswith("can't start a thread for 127.0.0.1:") for text in said)
    # No client is dropped without a word: each one not served is named, by either notice.
    named = {int(text.split(":")[1].split()[0]) for text in said}
    unserved = {sock.getsockname()[1] for sock in held if sock not in served}
    assert unserved <= named


def answered(sock: socket.socket, line: str, expected: str) -> bool:
    """Whether the server answers line with expected (a client it closed answers nothing)."""
    try:
        return ask(sock, line) == expected
    except OSError:
        return False


def connect_and_reset(port: int) -> None:
    """Connect, then close with SO_LINGER 0: the kernel sends RST and forgets the client."""
    sock = connect(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_thread_out_of_memory_survives_clients_that_reset(serve, clients):
    """The lesson is "it fails to start a thread and keeps serving the clients it has",
    whatever the refused client does: here it has reset before the server names it."""
    server = serve("thread", "--max-memory", "64", "--backlog", "512")  # no SYN waits out a full queue
    held = [clients(server.port) for _ in range(20)]
    assert wait_until(lambda: listen_queue(server.port)[0] == 0)
    working = [sock for sock in held if answered(sock, "discard", "discard,9")]
    assert 0 < len(working) < 20
    for _ in range(300):
        connect_and_reset(server.port)
    assert wait_until(lambda: listen_queue(server.port)[0] == 0)
    assert server.proc.poll() is None
    assert all(answered(sock, "smtp", "smtp,25") for sock in working)
    assert threads(server.pid) == 1 + len(working)
    server.proc.terminate()
    said = server.stderr_text()
    assert "can't start a thread for 127.0.0.1:" in said and "Traceback" not in said


@pytest.mark.parametrize("model", ["prefork", "threadpool"])
def test_pools_serve_n_at_once_and_queue_the_next(serve, clients, model):
    server = serve(model, "--workers", "3")
    held = [clients(server.port) for _ in range(3)]
    for sock in held:
        assert ask(sock, "discard") == "discard,9"
    extra = clients(server.port)
    extra.sendall(b"smtp\n")
    assert wait_until(lambda: listen_queue(server.port)[0] == 1)
    if model == "prefork":
        assert len(children(server.pid)) == 3
    else:
        assert threads(server.pid) == 4 and children(server.pid) == {}
    held[0].close()
    assert readline(extra) == "smtp,25"


def test_event_serves_fifty_clients_with_one_process_and_one_thread(serve, clients):
    server = serve("event")
    held = [clients(server.port) for _ in range(50)]
    for sock in held:
        sock.sendall(b"discard\n")
    assert all(readline(sock) == "discard,9" for sock in held)
    assert threads(server.pid) == 1 and children(server.pid) == {}
    assert listen_queue(server.port)[0] == 0


def test_event_delay_is_waiting_not_blocking(serve, clients):
    server = serve("event", "--delay", "0.5")
    held = [clients(server.port) for _ in range(10)]
    started = time.monotonic()
    for sock in held:
        sock.sendall(b"discard\n")
    assert all(readline(sock) == "discard,9" for sock in held)
    assert time.monotonic() - started < 0.5 * 10 / 2  # concurrent, not one after another


@pytest.mark.parametrize("model", ["fork", "prefork", "thread", "serial"])
def test_sigterm_stops_the_server_and_all_its_children(serve, clients, model):
    server = serve(model)
    for _ in range(3):
        clients(server.port).sendall(b"discard\n")
    server.proc.terminate()
    assert server.proc.wait(5) == 0
    assert wait_until(lambda: children(server.pid) == {})


def alive(pid: int) -> bool:
    """Running or sleeping, not a zombie (pytest, a subreaper, reaps those)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_second_signal_during_shutdown_changes_nothing(serve_many, clients):
    """SIGTERM, then SIGINT, SIGHUP or SIGTERM 0-20 ms later (a second Ctrl+C, a closing
    terminal's second SIGHUP): exit 0, no traceback, every child gone, every time."""
    rng = random.Random()  # a failure names its signal and gap
    for _ in range(5):  # 50 runs, 10 servers started at once: mostly, the time is Python starting
        runs = []
        for server in serve_many(10, "fork", "--backlog", "16"):
            held = [clients(server.port) for _ in range(rng.randint(3, 5))]
            assert all(ask(sock, "discard") == "discard,9" for sock in held)
            kids = children(server.pid)
            assert len(kids) == len(held)
            runs.append((server, kids))
        signalled = []
        for server, _ in runs:  # each server shuts down while the next is signalled
            second, gap = rng.choice([signal.SIGINT, signal.SIGHUP, signal.SIGTERM]), rng.uniform(0, 0.02)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(gap)
            server.proc.send_signal(second)
            signalled.append(f"SIGTERM, then {second.name} {gap * 1000:.1f} ms later")
        for (server, kids), what in zip(runs, signalled, strict=True):
            code = server.proc.wait(10)  # generous: ten servers exit at once, on a loaded machine
            wait_until(lambda: not any(alive(pid) for pid in kids), timeout=2)  # noqa: B023
            left = [pid for pid in kids if alive(pid)]
            for pid in left:  # they hold the server's stderr open: reading it would hang
                os.kill(pid, signal.SIGKILL)
            said = server.proc.stderr.read()
            assert (code, "Traceback" in said, left) == (0, False, []), f"{what}: exit {code}, left {left}\n{said}"


def rss_kb(pid: int) -> int:
    """Resident memory of pid and its children, from /proc (a fork server's is spread)."""
    total = 0
    for each in [pid, *children(pid)]:
        with contextlib.suppress(OSError), open(f"/proc/{each}/status") as f:
            total += int(next((line for line in f if line.startswith("VmRSS:")), "VmRSS: 0").split()[1])
    return total


def flood_without_reading(sock: socket.socket, seconds: float) -> int:
    """Send requests for seconds and read nothing (a client's send() blocks, or here
    fails with EAGAIN, while the server pushes back). How many bytes went."""
    sock.setblocking(False)
    chunk, sent, deadline = b"\x00\n" * 32768, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sent += sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    return sent


@pytest.mark.parametrize("model", ["serial", "fork", "thread", "event"])  # the pools serve as serial does
def test_a_client_that_never_reads_costs_a_bounded_buffer(serve, clients, model):
    """Back-pressure: a client that sends requests and never reads their replies must not
    make the server buffer them all (each 2-byte request has a 26-byte reply); others are
    still served. The server's RSS, from /proc, stays flat."""
    server = serve(model)
    flooder = clients(server.port)
    assert ask(flooder, "discard") == "discard,9"  # its process or thread is up
    before = rss_kb(server.pid)
    assert flood_without_reading(flooder, 3.0) > 1024 * 1024  # the server did read
    grown = rss_kb(server.pid) - before
    assert grown < 3 * 1024, f"{model}: RSS grew by {grown} kB"
    if model != "serial":  # serial serves one client at a time: the flooder holds it, as the lecture says
        assert ask(clients(server.port), "smtp") == "smtp,25"


def test_a_server_that_says_ready_has_its_database_loaded(capsys):
    """Every model's ready line comes after the cache is loaded: the first request opens no
    file (a sample taken meanwhile saw /etc/services come and go in the server's fd table)."""
    from svcviz.servers.net import announce
    from svcviz.servers.ready import parse_ready
    from svcviz.services import load_db

    load_db.cache_clear()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        announce("serial", listener)
    assert load_db.cache_info().currsize == 1
    ready = parse_ready(capsys.readouterr().out.strip())
    assert ready is not None and ready.model == "serial"
