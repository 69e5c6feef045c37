"""`svcviz watch --once`: bad targets, JSON, and servers svcviz did not write (C, http.server)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from conftest import PYTHON_COMM, wait_until
from kernel import children, connect, listen_queue, tcp_states, threads
from svcviz.observe.export import to_json
from svcviz.observe.observer import Observer, TargetError
from svcviz.procstat import read_stat
from svcviz.servers.registry import NAMES

FIXTURES = Path(__file__).parent / "fixtures"


def watch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "svcviz", "watch", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    )


def watch_json(*args: str) -> dict:
    result = watch(*args, "--once", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def started():
    """started(argv) -> Popen in its own process group; the group is killed when the test ends."""
    procs: list[subprocess.Popen] = []

    def start(argv: list[str], user: int | None = None) -> subprocess.Popen:
        procs.append(
            subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
                user=user,
                group=user,
            )
        )
        return procs[-1]

    yield start
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()


def process_state(pid: int) -> str:
    return read_stat(pid).state


def one_error_line(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"svcviz watch: {expected}\n"


def test_nothing_listening_on_the_port():
    port = free_port()
    one_error_line(watch("--port", str(port), "--once"), f"nothing is listening on port {port}")


def test_no_such_process():
    with open("/proc/sys/kernel/pid_max") as f:
        missing = int(f.read())  # pids are below pid_max
    one_error_line(watch("--pid", str(missing), "--once"), f"no process {missing}")


def test_a_process_that_listens_on_nothing(started):
    sleeper = started(["sleep", "30"])
    one_error_line(
        watch("--pid", str(sleeper.pid), "--once", "--json"),
        f"process {sleeper.pid} listens on nothing (sleep): name a server with --port or --pid",
    )


def test_a_thread_id_is_resolved_to_its_process_and_said_so(serve):
    """A tid pasted from `ps -L` raised KeyError in observer.py."""
    server = serve("threadpool")
    # Its workers may start just after its ready line.
    tids = wait_until(lambda: [tid for tid in map(int, os.listdir(f"/proc/{server.pid}/task")) if tid != server.pid])
    tid = tids[0]
    result = watch("--pid", str(tid), "--once", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"svcviz watch: {tid} is a thread of process {server.pid}: watching process {server.pid}\n"
    snapshot = json.loads(result.stdout)
    assert snapshot["root_pid"] == server.pid and snapshot["listen"][0]["port"] == server.port


def test_json_without_once_is_a_bad_argument(serve):
    server = serve("serial")
    one_error_line(watch("--port", str(server.port), "--json"), "--json needs --once (one snapshot as JSON)")


def test_json_has_the_documented_keys_and_agrees_with_the_kernel(serve):
    server = serve("fork", "--backlog", "5")
    client = connect(server.port)
    try:
        wait_until(lambda: len(children(server.pid)) == 1)
        check_json(watch_json("--port", str(server.port)), server, client)
    finally:
        client.close()


def check_json(data: dict, server, client: socket.socket) -> None:
    assert set(data) >= {"time", "listen", "processes", "connections", "counters"}
    (listen,) = data["listen"]
    assert set(listen) >= {"addr", "queue", "backlog", "pid", "fd"}
    assert (listen["addr"], listen["pid"]) == (f"127.0.0.1:{server.port}", server.pid)
    assert (listen["queue"], listen["backlog"]) == listen_queue(server.port) == (0, 5)
    pids = {p["pid"] for p in data["processes"]}
    assert pids == {server.pid, *children(server.pid)}
    for process in data["processes"]:
        assert set(process) >= {"pid", "ppid", "name", "state", "threads", "fds"}
        for fd in process["fds"]:
            assert set(fd) >= {"fd", "kind", "peer"} and fd["kind"] in ("listen", "conn", "other")
    (conn,) = data["connections"]
    assert set(conn) >= {"client", "state", "pid", "fd"}
    assert (conn["client"], conn["state"]) == (f"127.0.0.1:{client.getsockname()[1]}", "accepted")
    assert conn["pid"] in children(server.pid)
    assert set(data["counters"]) >= {"listen_overflows", "listen_drops"}


@pytest.fixture(scope="module")
def tiny_server():
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: no C server to watch")
    place = Path(tempfile.mkdtemp(prefix="svcviz-c-"))
    place.chmod(0o755)  # another user runs it too (the permission tests)
    binary = place / "tiny_server"
    try:
        subprocess.run(["gcc", "-O1", "-pthread", "-o", str(binary), str(FIXTURES / "tiny_server.c")], check=True)
        yield binary
    finally:
        shutil.rmtree(place)


def test_stopped_c_fork_server_queues_then_forks(tiny_server, started):
    server = started([str(tiny_server), "fork"])
    port = int(server.stdout.readline())
    os.kill(server.pid, signal.SIGSTOP)  # it cannot accept: clients wait in the queue
    assert wait_until(lambda: process_state(server.pid) == "T")
    held = [connect(port) for _ in range(2)]
    try:
        wait_until(lambda: listen_queue(port) == (2, 4))
        stopped = watch_json("--port", str(port))
        assert stopped["listen"][0]["queue"] == 2 and stopped["listen"][0]["backlog"] == 4
        assert [(p["pid"], p["state"], p["name"]) for p in stopped["processes"]] == [(server.pid, "T", "tiny_server")]
        assert [(c["state"], c["pid"]) for c in stopped["connections"]] == [("queued", None)] * 2

        os.kill(server.pid, signal.SIGCONT)
        wait_until(lambda: len(children(server.pid)) == 2 and listen_queue(port) == (0, 4))
        serving = watch_json("--pid", str(server.pid))
        assert {p["pid"] for p in serving["processes"]} == {server.pid, *children(server.pid)}
        owners = {c["client"]: c["pid"] for c in serving["connections"]}
        assert set(owners) == {f"127.0.0.1:{s.getsockname()[1]}" for s in held}
        assert set(owners.values()) == set(children(server.pid))

        held.pop().close()  # its child exits and, never waited for, stays a zombie
        wait_until(lambda: "Z" in children(server.pid).values())
        zombie = watch_json("--pid", str(server.pid))
        assert sorted(p["state"] for p in zombie["processes"] if p["pid"] != server.pid) == sorted(
            children(server.pid).values()
        )
    finally:
        for sock in held:
            sock.close()


def test_c_thread_server_threads_and_who_serves_whom(tiny_server, started):
    server = started([str(tiny_server), "thread"])
    port = int(server.stdout.readline())
    held = [connect(port) for _ in range(3)]
    try:
        wait_until(lambda: threads(server.pid) == 4)
        data = watch_json("--port", str(port))
        (process,) = data["processes"]
        assert process["threads"] == threads(server.pid) == 4
        tids = {t["tid"] for t in process["thread_list"]}
        assert tids == {int(t) for t in os.listdir(f"/proc/{server.pid}/task")}
        served = {c["client"]: c["tid"] for c in data["connections"]}
        assert set(served) == {f"127.0.0.1:{s.getsockname()[1]}" for s in held}
        assert set(served.values()) == tids - {server.pid}  # a thread each, blocked in recv()
    finally:
        for sock in held:
            sock.close()


def test_once_on_python_http_server_shows_listen_and_accepted(started):
    server = started([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
    port = int(server.stdout.readline().split(" port ")[1].split()[0])
    client = connect(port)  # sends nothing: a handler thread waits for its request line
    try:
        wait_until(lambda: threads(server.pid) == 2)
        handler = next(int(t) for t in os.listdir(f"/proc/{server.pid}/task") if int(t) != server.pid)
        result = watch("--port", str(port), "--once")
    finally:
        client.close()
    assert result.returncode == 0, result.stderr
    assert f"listen 127.0.0.1:{port}  queue 0/" in result.stdout
    assert f"127.0.0.1:{client_port(result.stdout, port)}" in result.stdout
    assert "accepted" in result.stdout and f"pid {server.pid} fd" in result.stdout
    assert f"thread {handler}" in result.stdout  # the handler thread, blocked reading its request


def client_port(text: str, port: int) -> int:
    """The client's port in the connections table (the one row whose server is the port)."""
    row = next(line for line in text.splitlines() if f"127.0.0.1:{port}" in line and "accepted" in line)
    return int(row.split("127.0.0.1:")[1].split()[0])


def tree_pids(pid: int) -> set[int]:
    return {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}


def disagreements(data: dict, server) -> list[str]:
    """Where watch's JSON and ss / ps / /proc differ (read right after it; empty: they agree)."""
    said = []
    listen = [(sock["queue"], sock["backlog"]) for sock in data["listen"]]
    if listen != [listen_queue(server.port)]:
        said.append(f"listen {listen} vs ss {listen_queue(server.port)}")
    if {p["pid"] for p in data["processes"]} != tree_pids(server.pid):
        said.append(f"pids {[p['pid'] for p in data['processes']]} vs ps {tree_pids(server.pid)}")
    for process in data["processes"]:
        if process["state"] != "Z" and process["threads"] != threads(process["pid"]):
            said.append(f"pid {process['pid']} threads {process['threads']} vs {threads(process['pid'])}")
    established = sum(c["state"] in ("queued", "accepted") for c in data["connections"])
    if established != tcp_states(server.port).count("ESTAB"):
        said.append(f"{established} connections vs ss {tcp_states(server.port)}")
    queued = sum(c["state"] == "queued" for c in data["connections"])
    if queued != sum(sock["queue"] for sock in data["listen"]):
        said.append(f"{queued} queued vs listen queue {data['listen']}")
    return said


@pytest.mark.parametrize("model", NAMES)
def test_watch_json_agrees_with_ss_and_ps_for_every_model(model, serve):
    server = serve(model)
    once = model in ("accept-once", "relisten")  # the first client takes the listening socket away
    held = [] if once else [connect(server.port) for _ in range(2)]
    try:
        agreed = wait_until(lambda: not disagreements(watch_json("--port", str(server.port)), server), timeout=5)
        assert agreed, disagreements(watch_json("--port", str(server.port)), server)
        if once:
            held.append(connect(server.port))
            assert wait_until(lambda: listen_queue(server.port) is None)
            one_error_line(
                watch("--pid", str(server.pid), "--once"),
                f"process {server.pid} listens on nothing ({PYTHON_COMM}): name a server with --port or --pid",
            )
    finally:
        for sock in held:
            sock.close()


NOBODY = 65534


def observed_as_nobody(pid: int) -> dict:
    """Observer(pid).sample() in a child process that has become user nobody: the JSON of
    the snapshot, or {"error": message}."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to become another user")
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                with Observer(pid=pid) as observer:
                    result = to_json(observer.sample())
            except TargetError as exc:
                result = {"error": str(exc)}
            os.write(writer, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        data = pipe.read()
    os.waitpid(child, 0)
    return json.loads(data)


def test_another_users_server_by_pid_is_one_clear_line_naming_what_would_work(serve):
    server = serve("serial")  # ours, root's: nobody may not read its fds
    assert observed_as_nobody(server.pid) == {
        "error": f"process {server.pid} ({PYTHON_COMM}) is root's: its fds cannot be read, so which sockets are its "
        "cannot be told: name its port with --port (what any user may see), or run as root"
    }


def test_a_process_we_may_not_read_is_shown_as_such(tiny_server, started):
    server = started([str(tiny_server), "fork-private"], user=NOBODY)  # children: non-dumpable
    port = int(server.stdout.readline())
    client = connect(port)
    try:
        assert wait_until(lambda: len(children(server.pid)) == 1)
        (child,) = children(server.pid)
        data = observed_as_nobody(server.pid)
    finally:
        client.close()
    by_pid = {p["pid"]: p for p in data["processes"]}
    assert set(by_pid) == {server.pid, child}
    assert by_pid[server.pid]["readable"] and not by_pid[child]["readable"]
    assert by_pid[child]["fds"] == [] and by_pid[child]["state"] in "SR"
    assert data["unreadable"] == [f"pid {child} fds: permission denied", f"pid {child} thread waits: permission denied"]
    # what its thread waits in is not guessed: said to be unreadable, and so is the architecture
    [thread] = by_pid[child]["thread_list"]
    assert (thread["syscall"], thread["syscall_readable"], thread["wait"]) == (None, False, "unreadable")
    assert by_pid[server.pid]["thread_list"][0]["syscall"] is not None
    assert data["architecture"]["name"] == "unknown"
    assert "cannot be read" in data["architecture"]["evidence"][0]
    # the connection is there; who holds it cannot be told
    assert [(c["state"], c["pid"]) for c in data["connections"]] == [("accepted", None)]


def test_once_prints_a_process_name_with_controls_as_plain_text(started):
    """A process names itself (prctl PR_SET_NAME): its name must not drive our terminal."""
    code = (
        "import ctypes, socket, time; ctypes.CDLL(None).prctl(15, '[red]\\x1b[2J\\u202e!'.encode(), 0, 0, 0); "
        "s = socket.create_server(('127.0.0.1', 0)); print(s.getsockname()[1], flush=True); time.sleep(60)"
    )
    server = started([sys.executable, "-c", code])
    port = int(server.stdout.readline())
    result = watch("--port", str(port), "--once")
    assert result.returncode == 0, result.stderr
    assert "[red]\\x1b[2J\\u202e!" in result.stdout
    assert not any(ch in result.stdout for ch in "\x1b\u202e")
