"""Starting and stopping real servers nobody here wrote (nginx, PostgreSQL...), each on a
free loopback port with its own temp config and data dir, never the system service. Used by
tests/test_real_servers.py and screenshots/make_screenshots.py; imports no pytest."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
from pathlib import Path

from conftest import wait_until

PG_BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"),
    default=Path("/usr/lib/postgresql/15/bin"),
    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
)


class DidNotStart(RuntimeError):
    """The server exited or never listened; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(argv: list[str], port: int, cwd: Path, user: str | None = None, env: dict | None = None):
    """The server started in its own process group, listening on port; stopped, group and all, after."""
    log = open(cwd / "server.log", "wb")
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, user=user, start_new_session=True, env=env
    )
    try:
        if not wait_until(lambda: _listening(port) or proc.poll() is not None, timeout=20.0) or proc.poll():
            raise DidNotStart(f"{argv[0]} did not start: {(cwd / 'server.log').read_text(errors='replace')[-800:]}")
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        wait_until(lambda: not _group_alive(proc.pid), timeout=5.0)
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def nginx_argv(nginx: str, folder: Path, port: int, workers: int) -> list[str]:
    """nginx in the foreground with a master and `workers` workers, its config, pid, logs
    and temp paths all in folder, one reuseport listener on port."""
    (folder / "logs").mkdir(exist_ok=True)
    (folder / "nginx.conf").write_text(
        textwrap.dedent(
            f"""
            daemon off;
            master_process on;
            worker_processes {workers};
            pid {folder}/nginx.pid;
            error_log {folder}/error.log;
            events {{ worker_connections 64; }}
            http {{
                access_log off;
                client_body_temp_path {folder}/body;
                proxy_temp_path {folder}/proxy;
                fastcgi_temp_path {folder}/fastcgi;
                uwsgi_temp_path {folder}/uwsgi;
                scgi_temp_path {folder}/scgi;
                server {{ listen 127.0.0.1:{port} reuseport; location / {{ return 200 "ok\\n"; }} }}
            }}
            """
        )
    )
    return [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf")]


def pg_missing() -> str | None:
    """Why PostgreSQL cannot run here (not installed, no postgres user), or None."""
    if not (PG_BIN / "postgres").exists():
        return f"PostgreSQL ({PG_BIN}) is not installed (`make real-servers` installs it)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user to run PostgreSQL as"
    return None


@contextlib.contextmanager
def pg_dir():
    """A temp dir the postgres user owns (a root-made temp dir is mode 700); removed after.
    PostgreSQL refuses to run as root."""
    path = Path(tempfile.mkdtemp(prefix="svcviz-pg-"))
    try:
        os.chown(path, pwd.getpwnam("postgres").pw_uid, -1)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def postgres_argv(folder: Path, port: int) -> list[str]:
    """A fresh cluster (initdb, trust auth, superuser postgres) in folder/data; the argv that
    serves it on 127.0.0.1:port with its unix socket in folder. Run it as user postgres."""
    data = folder / "data"
    init = [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    subprocess.run(init, check=True, user="postgres", capture_output=True, cwd=folder)
    argv = [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder)]
    return [*argv, "-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=16MB"]
