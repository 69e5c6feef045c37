"""Servers nobody here wrote, named right: each on a free loopback port with its own temp
config and data dir (never the system service), a few connections held, then checked: the
architecture, the titles, and every thread's call against /proc read directly.

gunicorn, uvicorn and Python's ThreadingHTTPServer run in every `make test` (pip, the
[test] extra); nginx, Redis, PostgreSQL, Apache and node when installed (`make
real-servers` installs them), and skip saying so when not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import wait_until
from realservers import free_port, nginx_argv, pg_dir, pg_missing, postgres_argv, running
from svcviz.observe.architecture import judge
from svcviz.observe.observer import Observer

PARTIAL_GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n"  # the request's end never comes: a worker waits for it
APACHE_MODULES = Path("/usr/lib/apache2/modules")
VENV_BIN = Path(sys.executable).parent


def need(path: str | Path, what: str) -> str:
    found = shutil.which(str(path)) or (str(path) if Path(path).exists() else None)
    if not found:
        pytest.skip(f"{what} is not installed (`make real-servers` installs it)")
    return found


@contextlib.contextmanager
def held(port: int, count: int, hello: bytes = b""):
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if hello:
                sock.sendall(hello)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def settle(port: int, expected: str, check=None, timeout: float = 10.0):
    """Sample until the server is named `expected` (and check(snapshot) holds): the snapshot.
    Fails with what it was named instead."""
    with Observer(port=port) as observer:
        last = []

        def named():
            snapshot = observer.sample()
            last[:] = [snapshot]
            return snapshot if judge(snapshot).name == expected and (check is None or check(snapshot)) else None

        snapshot = wait_until(named, timeout=timeout, interval=0.1)
        assert snapshot, f"named {judge(last[0])}, not {expected}"
        assert_waits_match_proc(observer)
        return snapshot


def assert_waits_match_proc(observer: Observer) -> None:
    """Every thread's call as the observer has it, against /proc/PID/task/TID/syscall read
    directly just before and after the sample (a thread that moved meanwhile is left out)."""
    before = _raw_calls()
    snapshot = observer.sample()
    after = _raw_calls()
    compared = 0
    for process in snapshot.processes:
        for thread in process.threads:
            raw = before.get((process.pid, thread.tid))
            if raw is None or raw != after.get((process.pid, thread.tid)) or raw == "running":
                continue
            assert thread.syscall_nr == int(raw), f"{process.pid}/{thread.tid}: {thread} vs /proc {raw}"
            compared += 1
    assert compared >= len([t for p in snapshot.processes for t in p.threads]) // 2


def _raw_calls() -> dict[tuple[int, int], str]:
    calls = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/syscall") as f:
                    calls[(int(pid), int(tid))] = f.read().split()[0]
    return calls


def titles(snapshot) -> list[str]:
    return [p.title for p in snapshot.processes if not p.zombie]


# -- in every make test ------------------------------------------------------------

WSGI_APP = "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok\\n']\n"
ASGI_APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok\\n"})
    """
)


def test_gunicorn_sync_is_prefork(tmp_path):
    (tmp_path / "app.py").write_text(WSGI_APP)
    port = free_port()
    argv = [str(VENV_BIN / "gunicorn"), "-w", "3", "-b", f"127.0.0.1:{port}", "app:app"]
    with running(argv, port, tmp_path), held(port, 2, PARTIAL_GET):
        snapshot = settle(
            port, "prefork", lambda s: sum(c.state == "accepted" for c in s.connections) == 2 and len(s.processes) == 4
        )
        assert all("gunicorn" in title for title in titles(snapshot))


def test_gunicorn_gthread_is_prefork_thread_pool(tmp_path):
    (tmp_path / "app.py").write_text(WSGI_APP)
    port = free_port()
    argv = [str(VENV_BIN / "gunicorn"), "-k", "gthread", "--threads", "4", "-w", "2", "-b", f"127.0.0.1:{port}"]
    with running([*argv, "app:app"], port, tmp_path), held(port, 3, PARTIAL_GET):
        snapshot = settle(port, "prefork+thread-pool")
        assert all("gunicorn" in title for title in titles(snapshot))


def test_uvicorn_is_an_event_loop(tmp_path):
    (tmp_path / "app.py").write_text(ASGI_APP)
    port = free_port()
    argv = [str(VENV_BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port), "app:app"]
    with running(argv, port, tmp_path), held(port, 3, PARTIAL_GET):
        snapshot = settle(port, "event-loop")
        [process] = snapshot.processes
        assert "uvicorn" in process.title
        assert any(fd.link == "anon_inode:[eventpoll]" for fd in process.fds)


def test_threading_http_server_is_thread_per_connection(tmp_path):
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with running(argv, port, tmp_path), held(port, 3, PARTIAL_GET):
        snapshot = settle(port, "thread-per-connection", lambda s: _own_threads(s.processes[0]) == 3)
        assert "http.server" in snapshot.processes[0].title


def _own_threads(process) -> int:
    """How many threads each block on a connection fd of their own (the handler threads)."""
    conn_fds = {fd.fd for fd in process.fds if fd.kind == "conn"}
    waits = sorted(t.syscall_fd for t in process.threads[1:] if t.syscall_fd is not None)
    return len(waits) if waits == sorted(conn_fds) and len(process.threads) == len(conn_fds) + 1 else 0


def test_node_is_an_event_loop(tmp_path):
    node = need("node", "node")
    port = free_port()
    script = f"require('http').createServer((q, s) => s.end('ok')).listen({port}, '127.0.0.1')"
    with running([node, "-e", script], port, tmp_path), held(port, 3, PARTIAL_GET):
        snapshot = settle(port, "event-loop")
        [process] = snapshot.processes
        assert len(process.threads) > 1  # libuv's and V8's helper threads, which serve no connection


# -- installed by `make real-servers` ----------------------------------------------


@pytest.mark.real_servers
def test_nginx_is_prefork_event_loop_with_reuseport(tmp_path):
    nginx = need("nginx", "nginx")
    port = free_port()
    argv = nginx_argv(nginx, tmp_path, port, workers=3)
    with running(argv, port, tmp_path), held(port, 4, PARTIAL_GET):
        snapshot = settle(port, "prefork+event-loop", lambda s: sum(c.state == "accepted" for c in s.connections) == 4)
        assert judge(snapshot).reuseport
        assert len(snapshot.listen) == 3 and len({sock.inode for sock in snapshot.listen}) == 3
        # every worker holds all three; each one's epoll watches its own (fdinfo)
        workers = {p.pid for p in snapshot.processes if p.title == "nginx: worker process"}
        assert all(set(sock.holders) >= workers for sock in snapshot.listen)
        assert sorted(len(sock.pollers) for sock in snapshot.listen) == [1, 1, 1]
        assert {sock.pollers[0] for sock in snapshot.listen} == workers
        assert sorted(titles(snapshot))[0].startswith("nginx: master process")
        assert sorted(titles(snapshot))[1:] == ["nginx: worker process"] * 3
        assert {p.user for p in snapshot.processes} == {"root", "nobody"}


@pytest.mark.real_servers
def test_redis_is_an_event_loop(tmp_path):
    redis = need("redis-server", "Redis (redis-server)")
    port = free_port()
    argv = [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with running([*argv, "--dir", str(tmp_path), "--daemonize", "no"], port, tmp_path), held(port, 3):
        snapshot = settle(port, "event-loop")
        [process] = snapshot.processes
        assert process.title.endswith(f"redis-server 127.0.0.1:{port}")  # the title Redis set
        names = {t.name for t in process.threads}
        assert "redis-server" in names and len(names) > 1  # bio_* helper threads


@pytest.fixture
def pg_folder():
    """A temp dir the postgres user owns; removed after."""
    if reason := pg_missing():
        pytest.skip(reason)
    with pg_dir() as path:
        yield path


@pytest.mark.real_servers
def test_postgresql_is_fork_per_connection(pg_folder):
    port = free_port()
    argv = postgres_argv(pg_folder, port)
    with running(argv, port, pg_folder, user="postgres"), held(port, 0) as socks:
        for _ in range(3):
            socks.append(_pg_session(port))
        snapshot = settle(port, "fork-per-connection", lambda s: sum(c.state == "accepted" for c in s.connections) == 3)
        backends = [t for t in titles(snapshot) if " idle" in t]
        assert len(backends) == 3 and all(t.startswith("postgres: postgres postgres 127.0.0.1(") for t in backends)
        assert any("checkpointer" in t for t in titles(snapshot))
        assert {p.user for p in snapshot.processes} == {"postgres"}


def _pg_session(port: int) -> socket.socket:
    """A real session (tried again while the server says it is starting up)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return _pg_session_once(port)
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _pg_session_once(port: int) -> socket.socket:
    """The startup message, trust auth, up to ReadyForQuery (then the backend is idle)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    params = b"user\0postgres\0database\0postgres\0\0"
    sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    data = b""
    while b"Z\x00\x00\x00\x05" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            sock.close()
            raise ConnectionError(f"PostgreSQL closed the session: {data!r}")
        data += chunk
    return sock


def _apache_conf(tmp_path: Path, port: int, mpm: str) -> Path:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("ok\n")
    pool = {
        "event": "StartServers 2\nServerLimit 2\nThreadsPerChild 5\nMaxRequestWorkers 10\n"
        "MinSpareThreads 5\nMaxSpareThreads 10\nThreadLimit 5\n",
        "prefork": "StartServers 3\nMinSpareServers 3\nMaxSpareServers 4\nMaxRequestWorkers 6\n",
    }[mpm]
    conf = tmp_path / "httpd.conf"
    conf.write_text(
        f"LoadModule mpm_{mpm}_module {APACHE_MODULES}/mod_mpm_{mpm}.so\n"
        f"LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so\n"
        f"ServerRoot {tmp_path}\nServerName localhost\nListen 127.0.0.1:{port}\n"
        f"PidFile {tmp_path}/httpd.pid\nErrorLog {tmp_path}/error.log\nDefaultRuntimeDir {tmp_path}\n"
        f"Mutex file:{tmp_path} default\nDocumentRoot {tmp_path}/www\nUser www-data\nGroup www-data\n"
        f"{pool}"
    )
    return conf


@pytest.mark.real_servers
@pytest.mark.parametrize(("mpm", "expected"), [("prefork", "prefork"), ("event", "prefork+thread-pool")])
def test_apache(tmp_path, mpm, expected):
    apache = need("apache2", "Apache (apache2)")
    port = free_port()
    conf = _apache_conf(tmp_path, port, mpm)
    with running([apache, "-f", str(conf), "-DFOREGROUND"], port, tmp_path), held(port, 2, PARTIAL_GET):
        snapshot = settle(port, expected, lambda s: sum(c.state == "accepted" for c in s.connections) == 2)
        assert {p.user for p in snapshot.processes} == {"root", "www-data"}
        assert all("apache2" in t for t in titles(snapshot))


@pytest.mark.real_servers
def test_apache_deferred_accept_is_waiting_for_first_bytes(tmp_path):
    """Apache asks for TCP_DEFER_ACCEPT: a client that sent nothing is ESTABLISHED on its
    side and SYN_RECV on the server's, in no queue: not a dropped SYN, not half-open."""
    apache = need("apache2", "Apache (apache2)")
    port = free_port()
    conf = _apache_conf(tmp_path, port, "prefork")
    with running([apache, "-f", str(conf), "-DFOREGROUND"], port, tmp_path):
        time.sleep(0.5)
        with held(port, 2):
            snapshot = settle(port, "prefork", lambda s: [c.state for c in s.connections] == ["deferred"] * 2)
            assert {c.tcp_state for c in snapshot.connections} == {"SYN_RECV"}
