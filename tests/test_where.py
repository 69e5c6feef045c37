"""Servers where they really run (issue 13): in another network namespace, as another user,
on IPv6 and dual-stack addresses, several on one port. Each is judged against what ss (run
in the same namespace, as the same user) says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from conftest import AS_NOBODY, NOBODY_CANNOT_RUN, PYTHON_COMM, Server, nobody_can_run_svcviz, wait_until
from kernel import ss
from svcviz.lab import Lab
from svcviz.procstat import read_stat
from svcviz.servers.config import ServerConfig
from svcviz.servers.ready import parse_ready
from svcviz.servers.registry import NAMES

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (network namespaces, becoming user nobody)")


def watch(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "svcviz", "watch", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    )


def watch_json(*args: str, prefix: tuple[str, ...] = ()) -> dict:
    result = watch(*args, "--once", "--json", prefix=prefix)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def states(data: dict) -> Counter:
    return Counter(conn["state"] for conn in data["connections"])


# -- another network namespace ----------------------------------------------------------


@pytest.fixture
def namespace():
    """A network namespace of our own (`ip netns add`), loopback up; deleted however the
    test ends, with every process started in it."""
    if not ROOT or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2's ip (ip netns add)")
    name = f"svcviz-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name, procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run(["ip", "netns", "del", name], check=False)


def start_in(namespace, argv: list[str]) -> subprocess.Popen:
    name, procs = namespace
    proc = subprocess.Popen(
        ["ip", "netns", "exec", name, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    procs.append(proc)
    return proc


def serve_in(namespace, model: str, *args: str) -> Server:
    proc = start_in(namespace, [sys.executable, "-m", "svcviz", "serve", model, "--port", "0", *args])
    ready = parse_ready(proc.stdout.readline())
    assert ready is not None, "the server in the namespace did not start"
    return Server(proc, ready)


CLIENTS = """
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
print("connected", flush=True)
time.sleep(60)
"""


def ss_in(name: str, *args: str) -> list[list[str]]:
    out = subprocess.run(["ip", "netns", "exec", name, "ss", "-H", *args], capture_output=True, text=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def test_a_server_in_another_namespace_is_seen_there(namespace):
    name = namespace[0]
    server = serve_in(namespace, "serial", "--backlog", "4")
    clients = start_in(namespace, [sys.executable, "-c", CLIENTS, str(server.port), "3"])
    assert clients.stdout.readline().strip() == "connected"
    port = server.port
    (listen,) = ss_in(name, "-ltn", f"sport = :{port}")
    assert wait_until(lambda: len(ss_in(name, "-tn", "state", "established", f"sport = :{port}")) == 3)

    inode = os.stat(f"/proc/{server.pid}/ns/net").st_ino
    for how in (["--pid", str(server.pid)], ["--port", str(port), "--netns", name]):
        data = watch_json(*how)
        assert data["netns"] == inode and data["netns_label"] == name
        (sock,) = data["listen"]
        assert (sock["addr"], sock["queue"], sock["backlog"]) == (f"127.0.0.1:{port}", int(listen[1]), int(listen[2]))
        assert data["root_pid"] == server.pid
        assert states(data) == {"accepted": 1, "queued": 2}  # serial: one served, two wait
        (served,) = [c for c in data["connections"] if c["state"] == "accepted"]
        assert served["pid"] == server.pid
        peers = {row[4] for row in ss_in(name, "-tn", f"sport = :{port}")}
        assert {c["client"] for c in data["connections"]} == peers

    # Our own namespace has no such listener: say where it is and how to name it.
    result = watch("--port", str(port), "--once")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"svcviz watch: nothing is listening on port {port} in this network namespace")
    assert f"in netns {inode} ({name})" in result.stderr and "add --netns " in result.stderr
    assert result.stderr.count("\n") == 1


def test_blast_from_inside_a_namespace_reaches_its_server_and_counts_its_side(namespace):
    name = namespace[0]
    server = serve_in(namespace, "fork", "--backlog", "64")
    blast = [sys.executable, "-m", "svcviz", "blast", "20", "--port", str(server.port), "--json"]
    done = subprocess.run([*blast, "--netns", name], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["connected"], result["refused"], result["server_established"]) == (20, 0, 20)
    text = subprocess.run([*blast[:-1], "--netns", name], capture_output=True, text=True, timeout=60).stdout
    assert text.startswith(f"svcviz blast 127.0.0.1:{server.port} in netns ") and f"({name})" in text
    # From our own namespace the same address is another machine's loopback: nothing there.
    if not ss_in_ours("-ltn", f"sport = :{server.port}"):
        done = subprocess.run(blast, capture_output=True, text=True, timeout=60)
        assert json.loads(done.stdout)["refused"] == 20 and done.returncode == 1
    bad = subprocess.run([*blast, "--netns", "svcviz-no-such-namespace"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and bad.stdout == ""
    assert (
        bad.stderr.startswith("svcviz blast: --netns svcviz-no-such-namespace: cannot read")
        and bad.stderr.count("\n") == 1
    )


def ss_in_ours(*args: str) -> list[str]:
    return [
        line for line in subprocess.run(["ss", "-H", *args], capture_output=True, text=True).stdout.splitlines() if line
    ]


def test_without_cap_sys_admin_the_namespace_tables_still_show(namespace):
    """As nobody, setns is refused: one line says so; /proc/PID/net still gives the rows."""
    if not nobody_can_run_svcviz():
        pytest.skip(NOBODY_CANNOT_RUN)
    server = serve_in(namespace, "serial", "--backlog", "4")
    clients = start_in(namespace, [sys.executable, "-c", CLIENTS, str(server.port), "2"])
    assert clients.stdout.readline().strip() == "connected"
    data = watch_json("--port", str(server.port), "--netns", str(server.pid), prefix=AS_NOBODY)
    (sock,) = data["listen"]
    assert sock["addr"] == f"127.0.0.1:{server.port}" and sock["queue"] == 1  # one accepted, one waits
    assert states(data) == {"accepted": 1, "queued": 1}
    assert any("needs CAP_SYS_ADMIN" in note for note in data["notes"])


# -- another user -----------------------------------------------------------------------


@pytest.fixture
def as_nobody():
    if not nobody_can_run_svcviz():
        pytest.skip(NOBODY_CANNOT_RUN)
    return AS_NOBODY


def test_a_root_server_watched_as_nobody_shows_what_ss_shows(as_nobody, serve):
    server = serve("serial", "--backlog", "4")
    held = []
    try:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        port = server.port
        assert wait_until(lambda: len(ss("-tn", "state", "established", f"sport = :{port}")) == 3)
        out = subprocess.run([*as_nobody, "ss", "-H", "-tan", f"sport = :{port}"], capture_output=True, text=True)
        rows = [line.split() for line in out.stdout.splitlines()]
        (listen,) = [row for row in rows if row[0] == "LISTEN"]

        data = watch_json("--port", str(port), prefix=as_nobody)
        (sock,) = data["listen"]
        assert (sock["queue"], sock["backlog"]) == (int(listen[1]), int(listen[2])) == (2, 4)
        assert sock["uid"] == 0 and sock["pid"] is None
        assert data["root_pid"] is None and data["processes"] == []  # no wrong root: its owner instead
        assert sorted(c["tcp_state"] for c in data["connections"]) == sorted(
            {"ESTAB": "ESTABLISHED"}[row[0]] for row in rows if row[0] != "LISTEN"
        )
        assert {c["client"] for c in data["connections"]} == {row[4] for row in rows if row[0] != "LISTEN"}
        assert [c["owner"] for c in data["connections"] if c["state"] == "accepted"] == ["unknown"]
        (note,) = data["notes"]
        assert f"inode {sock['inode']}" in note and "run as root to see" in note
    finally:
        for sock in held:
            sock.close()


NGINX_CONF = """
worker_processes 3;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "hi"; }} }}
}}
"""


def test_nginx_watched_as_nobody_is_rooted_at_its_master(as_nobody, tmp_path):
    """Root master, nobody workers: the workers are what nobody can read; the master, whose
    children share its listener, is the root (the whole tree, not one worker)."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp_path, port=port))
    master = subprocess.Popen(
        ["nginx", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: len(ss("-ltn", f"sport = :{port}")) == 1)
        assert wait_until(lambda: len(_children(master.pid)) == 3)
        data = watch_json("--port", str(port), prefix=as_nobody)
        assert data["root_pid"] == master.pid
        assert {p["pid"] for p in data["processes"]} == {master.pid, *_children(master.pid)}
        assert [p["readable"] for p in data["processes"]] == [False, True, True, True]
        assert any("run as root" in note for note in data["notes"])
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(master.pid, signal.SIGKILL)
            master.wait()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


# -- IPv6 and dual-stack ----------------------------------------------------------------


def knock(host: str, port: int, count: int) -> list[socket.socket]:
    """count non-blocking connects: the first backlog+1 complete, the rest wait in SYN_SENT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((host, port))
        socks.append(sock)
    return socks


@pytest.mark.parametrize(
    ("listen_host", "client_hosts"),
    [("::1", ["::1"]), ("::", ["127.0.0.1", "::1"])],
    ids=["loopback6", "dual-stack"],
)
def test_ipv6_and_dual_stack_clients_are_seen_in_every_state(listen_host, client_hosts, serve):
    server = serve("serial", "--host", listen_host, "--backlog", "1")
    socks: list[socket.socket] = []
    try:
        os.kill(server.pid, signal.SIGSTOP)  # it accepts nothing: two queue, the rest knock
        assert wait_until(lambda: read_stat(server.pid).state == "T")
        port = server.port
        for host in client_hosts:
            socks += knock(host, port, 3)
        syn_sent = lambda: ss("-tn", "state", "syn-sent", f"dport = :{port}")  # noqa: E731
        assert wait_until(lambda: len(syn_sent()) == 3 * len(client_hosts) - 2)
        data = watch_json("--port", str(port))
        (sock,) = data["listen"]
        assert sock["addr"] == f"[{listen_host}]:{port}"
        assert states(data) == {"queued": 2, "syn_sent": len(syn_sent())}
        knocking = {c["client"] for c in data["connections"] if c["state"] == "syn_sent"}
        assert knocking == {row[2] for row in syn_sent()}  # with a state filter, ss prints no State column
        if listen_host == "::":  # IPv4 clients knock as IPv4 sockets, queue as v4-mapped IPv6
            assert any(c.startswith("127.0.0.1:") for c in knocking)
    finally:
        for sock in socks:
            sock.close()
        os.kill(server.pid, signal.SIGCONT)


# -- which server -----------------------------------------------------------------------


def test_two_servers_on_one_port_are_named_and_one_is_chosen_by_addr(serve):
    first = serve("serial")
    second = serve("serial", "--host", "127.0.0.2", "--port", str(first.port))
    port = first.port
    result = watch("--port", str(port), "--once")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"svcviz watch: port {port}: 2 servers listen: 127.0.0.1:{port} (pid {first.pid} {PYTHON_COMM}); "
        f"127.0.0.2:{port} (pid {second.pid} {PYTHON_COMM}): choose one with --addr HOST:PORT or --pid PID\n"
    )
    for server, host in ((first, "127.0.0.1"), (second, "127.0.0.2")):
        data = watch_json("--addr", f"{host}:{port}")
        assert data["root_pid"] == server.pid
        assert [sock["addr"] for sock in data["listen"]] == [f"{host}:{port}"]
    missing = watch("--addr", f"127.0.0.3:{port}", "--once")
    assert missing.returncode == 2 and missing.stderr == f"svcviz watch: nothing is listening on 127.0.0.3:{port}\n"


def test_pid_1_is_refused_saying_what_it_is():
    listening = subprocess.run(["ss", "-H", "-ltnp"], capture_output=True, text=True).stdout
    if not ROOT or "pid=1," in listening:
        pytest.skip("needs root to read pid 1's fds, and a pid 1 that is not itself a server")
    with open("/proc/1/comm") as f:
        name = f.read().strip()
    result = watch("--pid", "1", "--once")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"svcviz watch: pid 1 is init ({name}): name a server with --port or --pid\n"


def test_a_shell_above_a_server_is_refused_naming_the_server(serve):
    shell = subprocess.Popen(
        ["sh", "-c", f"{sys.executable} -m svcviz serve serial --port 0; true"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        ready = parse_ready(shell.stdout.readline())
        result = watch("--pid", str(shell.pid), "--once")
        assert result.returncode == 2
        assert result.stderr == (
            f"svcviz watch: process {shell.pid} (sh) listens on nothing itself; pid {ready.pid} ({PYTHON_COMM}), "
            f"below it, listens on 127.0.0.1:{ready.port}: name it with --pid {ready.pid}\n"
        )
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
        shell.wait()
        shell.stdout.close()


# -- the dashboard, in a real terminal --------------------------------------------------


def tmux(name: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", name, *args], capture_output=True, text=True, timeout=10).stdout


def test_the_dashboard_on_a_namespaced_server_adds_clients_there(namespace):
    """`svcviz watch --pid P` of a server in another namespace, in tmux (a private socket):
    the header names the namespace, and `c` connects clients from inside it."""
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    name = namespace[0]
    server = serve_in(namespace, "thread")
    term = f"svcviz-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -m svcviz watch --pid {server.pid}"
    tmux(term, "new-session", "-d", "-s", term, "-x", "150", "-y", "40", command)
    try:
        screen = lambda: tmux(term, "capture-pane", "-p", "-t", term)  # noqa: E731
        inode = os.stat(f"/proc/{server.pid}/ns/net").st_ino
        assert wait_until(lambda: f"netns {inode} ({name})" in screen(), timeout=15), screen()
        assert f"127.0.0.1:{server.port}" in screen()
        for _ in range(3):
            tmux(term, "send-keys", "-t", term, "c")
        established = lambda: ss_in(name, "-tn", "state", "established", f"sport = :{server.port}")  # noqa: E731
        # established there: a socket made in our namespace would have been refused
        assert wait_until(lambda: len(established()) == 3, timeout=10), screen()
        assert wait_until(lambda: screen().count("idle") >= 3, timeout=10), screen()
    finally:
        tmux(term, "kill-server")
        wait_until(lambda: not _tmux_alive(term), timeout=5)


def _tmux_alive(name: str) -> bool:
    return subprocess.run(["tmux", "-L", name, "has-session"], capture_output=True).returncode == 0


@pytest.mark.parametrize("model", NAMES)
async def test_the_dashboards_lab_on_ipv6_serves_and_sees_its_clients(model):
    """`svcviz --host ::1 --model M`: the server listens on [::1], the fleet's clients reach
    it over IPv6, and the observer sees them there."""
    lab = Lab(ServerConfig(model=model, host="::1", port=0))
    await lab.start()
    try:
        await lab.add_clients(2)
        port = lab.port
        update = None
        for _ in range(100):
            update = await lab.sample()
            if len(update.snapshot.connections) == 2 or (model == "accept-once" and update.snapshot.connections):
                break
            await asyncio.sleep(0.05)
        assert update.snapshot.connections, f"{model}: no connection seen"
        assert all(conn.client.startswith("[::1]:") for conn in update.snapshot.connections)
        assert all(conn.server == f"[::1]:{port}" for conn in update.snapshot.connections)
        if model not in ("accept-once", "relisten"):  # their listener is closed while they serve
            assert [sock.addr for sock in update.snapshot.listen] == [f"[::1]:{port}"]
        if model not in ("accept-once", "relisten"):  # their lesson: a later client is reset or refused
            assert not [c for c in update.clients if c.error]
    finally:
        await lab.stop()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--addr", "6168"],
            "svcviz watch: argument --addr: '6168' is not HOST:PORT (e.g. 127.0.0.1:6168, [::1]:6168)",
        ),
        (["--addr", "[::1]:99999"], "svcviz watch: argument --addr: '99999' is not a port (0..65535)"),
        (
            ["--port", "6168", "--netns", "svcviz-no-such-namespace"],
            "svcviz watch: --netns svcviz-no-such-namespace: cannot read /run/netns/svcviz-no-such-namespace "
            "(no such namespace, or not ours to read)",
        ),
    ],
)
def test_a_bad_addr_or_netns_is_one_line(args, line):
    result = watch(*args, "--once")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(line) and result.stderr.count("\n") == 1
