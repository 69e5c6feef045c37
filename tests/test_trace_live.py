"""`svcviz trace` on real servers: the fork server's story in order, and nothing left attached."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from conftest import AS_NOBODY, NOBODY_CANNOT_RUN, nobody_can_run_svcviz, wait_until
from svcviz.servers.ready import parse_ready
from svcviz.trace.strace import Tracer, tracer_of

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt install strace)")

SVCVIZ = [sys.executable, "-m", "svcviz"]


def trace_as_nobody(*args: str) -> subprocess.CompletedProcess:
    """`svcviz trace ARGS` run as user nobody; skipped where that cannot be."""
    if not nobody_can_run_svcviz():
        pytest.skip(NOBODY_CANNOT_RUN)
    return subprocess.run([*AS_NOBODY, *SVCVIZ, "trace", *args], capture_output=True, text=True, timeout=20)


def start_trace(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*SVCVIZ, "trace", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ask_and_quit(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"discard\n")
        assert client.recv(100) == b"discard,9\n"


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_fork_server_accept_clone_read_write_exit_wait4_in_order(serve, stop_with):
    server = serve("fork", "--sigchld", "reap")
    tracing = start_trace("--pid", str(server.pid), "--json")
    try:
        assert wait_until(lambda: tracer_of(server.pid) not in (0, None)), "strace never attached"
        # TracerPid is set at PTRACE_SEIZE, a moment before strace asks for syscall stops: a
        # loaded machine can fit the first client's accept() in between. The second client's
        # story is then the first one told whole; the order checks below take the first.
        children = f"/proc/{server.pid}/task/{server.pid}/children"
        for _ in range(2):
            ask_and_quit(server.port)
            assert wait_until(lambda: open(children).read().strip() == ""), "the child was never reaped"
    finally:
        tracing.send_signal(stop_with)
        out, err = tracing.communicate(timeout=10)
    assert tracing.returncode == 0, err
    assert tracer_of(server.pid) == 0, "strace is still attached after svcviz trace ended"
    events = [json.loads(line) for line in out.splitlines()]
    assert all(set(e) >= {"time", "pid", "syscall", "args", "result", "detail"} for e in events)

    def first(pred, after: int = -1) -> int:
        return next(i for i, e in enumerate(events) if i > after and pred(e))

    accept = first(lambda e: e["syscall"].startswith("accept") and e["result"].isdigit())
    clone = first(lambda e: e["syscall"] in ("clone", "clone3", "fork"), accept)
    child = int(events[clone]["result"])
    read = first(lambda e: e["syscall"] in ("read", "recvfrom", "recvmsg") and e["pid"] == child, clone)
    write = first(lambda e: e["syscall"] in ("write", "sendto", "sendmsg") and e["pid"] == child, read)
    exit_ = first(lambda e: e["syscall"] in ("exit_group", "exit") and e["pid"] == child, write)
    reaped = first(lambda e: e["syscall"] in ("wait4", "waitid") and e["result"] == str(child), exit_)
    assert {events[i]["pid"] for i in (accept, clone, reaped)} == {server.pid}
    assert events[read]["detail"] == '"discard\\n"'
    assert events[write]["detail"] == '"discard,9\\n"'
    assert events[accept]["detail"].startswith("(127.0.0.1:")


def test_text_lines_and_seconds_end_it_detached(serve):
    server = serve("thread")
    tracing = start_trace("--port", str(server.port), "--seconds", "2")
    assert wait_until(lambda: tracer_of(server.pid) not in (0, None)), "strace never attached"
    ask_and_quit(server.port)
    out, err = tracing.communicate(timeout=10)
    assert tracing.returncode == 0, err
    assert tracer_of(server.pid) == 0
    assert any(" clone3() = " in line or " clone() = " in line for line in out.splitlines())
    assert any(line.endswith('"discard\\n"') for line in out.splitlines())


def test_missing_strace_says_how_to_get_it(serve):
    server = serve("serial")
    env = {**os.environ, "PATH": "/nonexistent"}
    result = subprocess.run(
        [*SVCVIZ, "trace", "--pid", str(server.pid)], capture_output=True, text=True, env=env, timeout=10
    )
    assert result.returncode == 2
    assert "apt install strace" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_such_server_is_one_line_exit_2():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = subprocess.run([*SVCVIZ, "trace", "--port", str(port)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_launched_server_is_traced_with_seccomp_and_gets_no_fd_of_ours():
    async def scene() -> tuple[list[str], list[str]]:
        tracer = Tracer.launch([*SVCVIZ, "serve", "serial", "--port", "0"], seccomp=True)
        await tracer.start(stdout=asyncio.subprocess.PIPE)
        try:
            ready = (await asyncio.wait_for(tracer.proc.stdout.readline(), 10)).decode()
            port = parse_ready(ready).port
            pid = tracer.server_pid
            fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            await asyncio.to_thread(ask_and_quit, port)
            lines: list[str] = []

            async def collect() -> None:
                async for event in tracer.events():
                    lines.append(event.line())

            collecting = asyncio.ensure_future(collect())
            await asyncio.sleep(0.5)
            os.kill(pid, signal.SIGTERM)
            await asyncio.wait_for(collecting, 10)
        finally:
            await tracer.stop()
        return lines, fds

    lines, fds = asyncio.run(scene())
    assert not any("svcviz-trace-" in target for target in fds), fds
    assert any(" accept4(3) = " in line for line in lines), lines
    assert any('"discard\\n"' in line for line in lines), lines


def test_sigkill_of_svcviz_trace_still_leaves_nothing_attached(serve):
    server = serve("serial")
    tracing = start_trace("--pid", str(server.pid))
    assert wait_until(lambda: tracer_of(server.pid) not in (0, None)), "strace never attached"
    tracing.kill()
    tracing.communicate(timeout=10)
    # strace dies with svcviz (PR_SET_PDEATHSIG: SIGTERM, and strace detaches on SIGTERM)
    assert wait_until(lambda: tracer_of(server.pid) == 0), "strace outlived svcviz trace, still attached"
    ask_and_quit(server.port)  # and the server still serves


needs_root_and_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to drop ptrace rights"
)


@needs_root_and_setpriv
@pytest.mark.parametrize(
    "drop, words",
    [
        (["--bounding-set", "-sys_ptrace"], "lacks CAP_SYS_PTRACE"),
        (list(AS_NOBODY[1:]), "belongs to uid 0 and you are not root"),
    ],
)
def test_refused_ptrace_says_why_in_one_line(serve, drop, words):
    if drop == list(AS_NOBODY[1:]) and not nobody_can_run_svcviz():
        pytest.skip(NOBODY_CANNOT_RUN)
    server = serve("serial")
    result = subprocess.run(
        ["setpriv", *drop, *SVCVIZ, "trace", "--pid", str(server.pid), "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert words in result.stderr and f"cannot trace pid {server.pid}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert tracer_of(server.pid) == 0


@needs_root_and_setpriv
def test_a_port_whose_process_may_not_be_read_is_one_line_exit_2(serve):
    """Watching by port, another user's server is found by its socket alone (no process):
    there is no pid to attach strace to, and that is said in one line, not strace's words."""
    server = serve("serial")
    result = trace_as_nobody("--port", str(server.port), "--seconds", "1")
    assert result.returncode == 2, result.stderr
    assert f"cannot trace port {server.port}" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert tracer_of(server.pid) == 0
