"""`svcviz serve` and `svcviz models` from the command line: ready line, bad input, exit codes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from conftest import AS_NOBODY, NOBODY_CANNOT_RUN, nobody_can_run_svcviz
from kernel import listen_queue
from svcviz.servers.ready import Ready, parse_ready

SVCVIZ = [sys.executable, "-m", "svcviz"]


def run(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run([*SVCVIZ, *args], capture_output=True, text=True, timeout=timeout)


def test_ready_line_names_model_address_and_pid(serve):
    server = serve("serial")
    assert listen_queue(server.port) == (0, 8)
    assert server.ready == Ready("serial", "127.0.0.1", server.port, server.proc.pid)
    assert server.ready.line() == f"svcviz: serial listening on 127.0.0.1:{server.port} (pid {server.proc.pid})"


def test_ready_line_of_an_ipv6_server_brackets_the_host():
    ready = parse_ready("svcviz: event listening on [::1]:6168 (pid 42)\n")
    assert ready == Ready("event", "::1", 6168, 42)
    assert ready.address == "[::1]:6168"
    assert parse_ready(ready.line()) == ready
    assert parse_ready("svcviz serve: port 80 is privileged") is None


@pytest.mark.parametrize(
    "args, words",
    [
        (["serve", "nosuch"], "unknown model 'nosuch'"),
        (["serve", "serial", "--port", "99999"], "not a port"),
        (["serve", "serial", "--backlog", "x"], "not a whole number"),
        (["serve", "serial", "--delay", "-1"], "must be 0..86400"),
        (["serve", "fork", "--sigchld", "sometimes"], "invalid choice"),
        (["serve", "prefork", "--workers", "300"], "the process cap is 256"),
        (["serve", "threadpool", "--workers", "0"], "--workers 0"),
        (["serve", "fork", "--max-fds", "3"], "--max-fds 3"),
        (["serve", "thread", "--max-memory", "1"], "--max-memory 1"),
        (["serve", "serial", "--host", "no.such.host.invalid"], "cannot listen on"),
        (["serve", "serial", "--host", "192.0.2.1"], "no such address"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(args, words):
    result = run(*args, "--port", "0") if args[0] == "serve" else run(*args)
    assert result.returncode == 2
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("host", ["..", "a" * 70, "a" * 70 + ".example", ""])
@pytest.mark.parametrize(
    "command",
    [["serve", "serial", "--port", "0"], ["--port", "0"], ["blast", "1", "--port", "9"]],
    ids=["serve", "dashboard", "blast"],
)
def test_a_host_idna_cannot_encode_is_one_line_for_every_command(command, host):
    """getaddrinfo() raised UnicodeError (a 27-line traceback) for an empty or 64+ label."""
    result = run(*command, "--host", host)
    assert result.returncode == 2, result.stderr
    assert "--host" in result.stderr and ("not a host name" in result.stderr or "empty" in result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["--host", "127.0.0.2", "serve", "serial", "--port", "0"], ["--model", "fork", "models"]], ids=" ".join
)
def test_dashboard_options_before_a_command_are_refused_not_dropped(args):
    """`svcviz --host H serve serial` served on serve's default host: H silently dropped."""
    result = run(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert f"{args[0]}: an option of the dashboard" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_busy_port_exits_2_naming_the_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "serial", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == f"svcviz serve: port {port} on 127.0.0.1 is already in use"


def test_privileged_port_without_root_exits_2():
    if not nobody_can_run_svcviz():
        pytest.skip(NOBODY_CANNOT_RUN)
    result = subprocess.run(
        [*AS_NOBODY, *SVCVIZ, "serve", "serial", "--port", "80"], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 2
    assert "port 80 is privileged" in result.stderr


def test_models_lists_nine_in_lecture_order():
    result = run("models", "--json")
    models = json.loads(result.stdout)
    assert [m["name"] for m in models] == [
        "listen-only",
        "accept-once",
        "relisten",
        "serial",
        "fork",
        "thread",
        "prefork",
        "threadpool",
        "event",
    ]
    assert all(m["lecture"] and m["idea"] for m in models)
    assert "serviceserver03" in run("models").stdout
