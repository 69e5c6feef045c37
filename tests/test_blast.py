"""`svcviz blast`: its counts against what the kernel saw (ss), exit codes, fd limit, bar."""

from __future__ import annotations

import json
import os
import pty
import resource
import socket
import subprocess
import sys

import pytest
from tests.conftest import wait_until
from tests.kernel import listen_queue, ss, tcp_states

from svcviz.servers.registry import NAMES

pytestmark = pytest.mark.timeout(30)


def blast(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "svcviz", "blast", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def finish(proc: subprocess.Popen) -> tuple[int, dict | str, str]:
    out, err = proc.communicate(timeout=20)
    try:
        return proc.returncode, json.loads(out), err
    except json.JSONDecodeError:
        return proc.returncode, out, err


def client_side(server_port: int) -> list[str]:
    return [row[0] for row in ss("-tan", f"dport = :{server_port}")]


def test_blast_holds_what_it_says_it_connected(serve):
    server = serve("event", "--backlog", "256")
    proc = blast("200", "--port", str(server.port), "--hold", "1.5", "--query", "discard", "--json")
    result = json.loads(proc.stdout.readline())  # said at once; the hold follows
    assert client_side(server.port).count("ESTAB") == 200
    assert wait_until(lambda: tcp_states(server.port).count("ESTAB") == 200)  # accepted by the server
    code, rest, err = finish(proc)
    assert rest == ""
    assert code == 0, err
    assert {k: result[k] for k in ("requested", "connected", "refused", "timed_out", "errors")} == {
        "requested": 200,
        "connected": 200,
        "refused": 0,
        "timed_out": 0,
        "errors": 0,
    }
    assert 0 < result["seconds"] < 1.5  # connecting them, not the hold
    assert 0 <= result["connect_ms"]["p50"] <= result["connect_ms"]["p99"]
    assert wait_until(lambda: "ESTAB" not in client_side(server.port))


def test_blast_counts_a_full_accept_queue_truthfully(serve):
    server = serve("listen-only", "--backlog", "3")
    proc = blast("10", "--port", str(server.port), "--timeout", "0.5", "--hold", "1", "--json")
    assert wait_until(lambda: listen_queue(server.port) == (4, 3))  # backlog 3 holds 4
    code, result, _ = finish(proc)
    assert code == 1
    assert (result["connected"], result["timed_out"], result["refused"], result["errors"]) == (4, 6, 0, 0)
    assert (result["server_established"], result["half_open"], result["reset"]) == (4, 0, 0)  # all in its queue


def test_blast_says_how_many_connections_the_server_side_knows():
    """A client can be connected while the server has no connection: it ignored the final
    ACK. TCP_DEFER_ACCEPT makes that happen every time (the server's side waits in SYN_RECV
    for data), as a full accept queue with SYN cookies does by chance."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 30)
        port = server.getsockname()[1]
        code, result, _ = finish(blast("6", "--port", str(port), "--json"))
        code, summary, _ = finish(blast("6", "--port", str(port)))
    assert code == 0 and (result["connected"], result["errors"], result["reset"]) == (6, 0, 0)
    assert (result["server_established"], result["server_closed"], result["half_open"]) == (0, 0, 6)
    assert "server side knows 0 of the 6 connected" in summary
    assert "half-open   6: the server dropped their final ACK" in summary


def test_blast_to_a_server_elsewhere_says_the_server_side_is_unknown():
    code, out, _ = finish(blast("1", "--port", "9", "--host", "192.0.2.1", "--timeout", "0.2"))
    assert code == 1  # nothing connected
    assert "server side unknown" in out


def test_blast_to_a_closed_port_is_refused():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # bound, never listening: the kernel refuses
    try:
        code, result, _ = finish(blast("7", "--port", str(holder.getsockname()[1]), "--json"))
    finally:
        holder.close()
    assert code == 1
    assert (result["requested"], result["connected"], result["refused"]) == (7, 0, 7)
    assert result["connect_ms"] == {"p50": None, "p99": None}


@pytest.mark.parametrize("model", NAMES)
def test_blast_against_every_model(serve, model):
    server = serve(model)
    code, result, err = finish(blast("5", "--port", str(server.port), "--timeout", "2", "--json"))
    assert result["connected"] + result["refused"] + result["timed_out"] + result["reset"] + result["errors"] == 5
    assert code == (0 if result["connected"] == 5 else 1), err
    if model not in ("accept-once", "relisten"):  # these close their listening socket
        assert result["connected"] == 5  # the default backlog (8) queues five everywhere


@pytest.mark.parametrize(
    "args",
    [
        ["0", "--port", "9"],
        ["5", "--port", "0"],
        ["5", "--port", "9", "--rate", "0"],
        ["5", "--port", "9", "--rate", "nan"],
        ["5", "--port", "9", "--timeout", "0"],
        ["5", "--port", "9", "--host", "no-such-host.invalid"],
        ["5", "--port", "9", "--query", "a\tb"],
        ["-1", "--port", "9"],
        ["5"],
        ["many", "--port", "9"],
        ["5", "--port", "9", "--hold", "-1"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    code, out, err = finish(blast(*args))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_summary_table_without_a_bar_when_not_a_terminal(serve):
    server = serve("event")
    code, out, _ = finish(blast("3", "--port", str(server.port)))
    assert code == 0
    assert "connected   3" in out and "refused     0" in out and "\r" not in out


def test_progress_bar_on_a_terminal(serve):
    server = serve("event", "--backlog", "64")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "svcviz", "blast", "50", "--port", str(server.port)],
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(10) == 0
    assert b"50/50" in out and b"\r" in out and b"connected   50" in out


def test_rate_paces_the_connects(serve):
    server = serve("event")
    code, result, _ = finish(blast("21", "--port", str(server.port), "--rate", "100", "--json"))
    assert code == 0 and result["connected"] == 21
    assert 0.19 <= result["seconds"] < 1.0  # 20 gaps of 10 ms


def _soft_fd_limit(soft: int, hard: int | None = None):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard or resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    return limit


def test_raises_its_own_fd_limit_and_says_so(serve):
    server = serve("event", "--backlog", "256")
    code, result, err = finish(blast("100", "--port", str(server.port), "--json", preexec_fn=_soft_fd_limit(64)))
    assert code == 0 and result["connected"] == 100
    assert "raised the open-file limit from 64 to 132" in err


def test_says_so_when_the_hard_fd_limit_is_too_low(serve):
    server = serve("event", "--backlog", "256")
    code, out, err = finish(blast("100", "--port", str(server.port), preexec_fn=_soft_fd_limit(64, 64)))
    assert code == 1
    assert "the limit allows 64" in err and "EMFILE" in err
    assert "EMFILE x" in out  # the failures are named in the summary
