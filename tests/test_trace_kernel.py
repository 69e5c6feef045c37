"""`svcviz trace --kernel`: the kernel's syscall tracepoints, parsed from a capture and live.

The capture (fixtures/tracefs_fork_thread.txt) is an instance's `trace` text: a fork server
(--sigchld reap) and then a thread server, each asked `discard` by one client that quits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import wait_until
from svcviz.trace.kernel import PREFIX, remove_leftovers, tracefs
from svcviz.trace.kernel_parse import KernelTraceParser
from test_trace_live import trace_as_nobody

FIXTURE = Path(__file__).parent / "fixtures" / "tracefs_fork_thread.txt"
SVCVIZ = [sys.executable, "-m", "svcviz"]
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="kernel tracing needs root (tracefs)")


def parsed(text: str) -> list[str]:
    parser = KernelTraceParser(monotonic_to_epoch=0.0)
    return [event.line() for line in text.splitlines() if (event := parser.feed(line))]


def test_the_fork_and_thread_servers_stories_from_a_capture():
    # Each server's first accept4 began before tracing did: its return alone is no event.
    assert parsed(FIXTURE.read_text()) == [
        "14276 clone() = 14285",  # the child's own `clone -> 0` is not an event either
        "14276 close(4)",
        "14276 close(4)",
        "14285 recvfrom(4) = 8",
        "14285 sendto(4) = 10",
        "14285 recvfrom(4) = 0",
        "14285 exit_group(0)",
        "14276 accept4(3) = -1 ERESTARTSYS",  # SIGCHLD interrupted it: the kernel's own code
        "14276 --- SIGCHLD",
        "14276 wait4(-1) = 14285",
        "14276 wait4(-1) = -1 ECHILD",
        # the thread server: clone3 for the thread, the thread's fd 4, its exit (not exit_group);
        # the main thread's next accept4 never returned while traced
        "14291 clone3() = 14300",
        "14300 recvfrom(4) = 8",
        "14300 sendto(4) = 10",
        "14300 recvfrom(4) = 0",
        "14300 close(4)",
        "14300 exit(0)",
    ]


def test_odd_names_lost_events_and_negative_ints():
    lines = [
        "  my-odd name-3-77  [001] ..... 10.000001: sys_close(fd: 5)",
        "  my-odd name-3-77  [001] ..... 10.000002: sys_close -> 0xfffffffffffffff7",
        "CPU:1 [LOST 12 EVENTS]",
        "  w-78  [000] ..... 11.5: sys_wait4(upid: 0xffffffffffffffff, stat_addr: 0, options: 0, ru: 0)",
        "  w-78  [000] ..... 11.6: sys_wait4 -> 0x4f",
        "  w-78  [000] d..1. 11.7: signal_deliver: sig=40 errno=0 code=-1 sa_handler=0 sa_flags=0",
        "  w-79  [000] ..... 11.8: sys_read -> 0x3",  # its entry came before tracing began
    ]
    assert parsed("\n".join(lines)) == [
        "77 close(5) = -1 EBADF",
        "--- 12 events lost: the kernel's buffer for CPU 1 was full ---",
        "78 wait4(-1) = 79",
        "78 --- signal 40",
    ]


def test_lost_events_forget_the_calls_begun_before_them():
    parser = KernelTraceParser(monotonic_to_epoch=0.0)
    assert (
        parser.feed("  a-5  [000] ..... 1.0: sys_accept4(fd: 3, upeer_sockaddr: 0, upeer_addrlen: 0, flags: 0)") is None
    )
    lost = parser.feed("CPU:0 [LOST 3 EVENTS]")
    assert lost is not None and lost.kind == "lost" and lost.as_json()["kind"] == "lost"
    # this return may be another accept4's, whose entry was among the lost: no event
    assert parser.feed("  a-5  [000] ..... 2.0: sys_accept4 -> 0x6") is None


def test_event_times_are_the_calls_beginnings_on_the_epoch_clock():
    parser = KernelTraceParser(monotonic_to_epoch=1000.0)
    assert (
        parser.feed("  a-5  [000] ..... 2.25: sys_accept4(fd: 3, upeer_sockaddr: 0, upeer_addrlen: 0, flags: 0)")
        is None
    )
    event = parser.feed("  a-5  [000] ..... 9.5: sys_accept4 -> 0x6")
    assert event is not None and (event.time, event.args, event.result) == (1002.25, "3", "6")


def test_without_root_one_line_says_so(serve):
    server = serve("serial")
    args = ("--kernel", "--pid", str(server.pid), "--seconds", "1")
    if ROOT:
        result = trace_as_nobody(*args)
    else:
        result = subprocess.run([*SVCVIZ, "trace", *args], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "svcviz trace: kernel tracing needs root (tracefs): run as root, or trace with strace (without --kernel)"
    )


def instances() -> set[str]:
    return {entry.name for entry in (tracefs() / "instances").iterdir() if entry.name.startswith(PREFIX)}


def set_up(name: str) -> bool:
    """The instance traces: its last switch (signals) is on."""
    switch = tracefs() / "instances" / name / "events" / "signal" / "signal_deliver" / "enable"
    return switch.exists() and switch.read_text().strip() == "1"


@needs_root
@pytest.mark.parametrize("stop_with", [signal.SIGINT, None])
def test_fork_server_live_in_order_and_the_instance_removed_after(serve, stop_with):
    server = serve("fork", "--sigchld", "reap")
    before = instances()
    tracing = subprocess.Popen(
        [
            *SVCVIZ,
            "trace",
            "--kernel",
            "--pid",
            str(server.pid),
            "--json",
            *(["--seconds", "3"] if not stop_with else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: len(instances() - before) == 1), "no tracefs instance appeared"
        (instance,) = instances() - before
        assert wait_until(lambda: set_up(instance)), "the instance was never switched on"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            client.sendall(b"discard\n")
            assert client.recv(100) == b"discard,9\n"
        children = f"/proc/{server.pid}/task/{server.pid}/children"
        assert wait_until(lambda: open(children).read().strip() == ""), "the child was never reaped"
    finally:
        if stop_with:
            time.sleep(0.5)  # the reap's events reach the pipe before the signal ends the trace
            tracing.send_signal(stop_with)
        out, err = tracing.communicate(timeout=15)
    assert tracing.returncode == 0, err
    assert instances() == before, "the tracefs instance outlived svcviz trace"
    events = [json.loads(line) for line in out.splitlines()]

    def first(pred, after: int = -1) -> int:
        return next(i for i, e in enumerate(events) if i > after and pred(e))

    accept = first(lambda e: e["syscall"] == "accept4" and e["result"].isdigit())
    clone = first(lambda e: e["syscall"] in ("clone", "clone3"), accept)
    child = int(events[clone]["result"])
    read = first(lambda e: e["syscall"] == "recvfrom" and e["pid"] == child and e["result"] == "8", clone)
    write = first(lambda e: e["syscall"] == "sendto" and e["pid"] == child and e["result"] == "10", read)
    exit_ = first(lambda e: e["syscall"] == "exit_group" and e["pid"] == child, write)
    first(lambda e: e["syscall"] == "wait4" and e["result"] == str(child) and e["pid"] == server.pid, exit_)
    assert events[accept]["pid"] == events[clone]["pid"] == server.pid
    assert events[read]["args"] == events[write]["args"] == events[accept]["result"]  # the accepted fd


@needs_root
def test_an_instance_left_by_a_killed_svcviz_is_removed_by_the_next(serve):
    server = serve("serial")
    before = instances()
    tracing = subprocess.Popen([*SVCVIZ, "trace", "--kernel", "--pid", str(server.pid)], stderr=subprocess.PIPE)
    assert wait_until(lambda: len(instances() - before) == 1), "no tracefs instance appeared"
    (left,) = instances() - before
    tracing.kill()
    tracing.communicate(timeout=10)
    assert left in instances()  # SIGKILL: nothing could clean up
    remove_leftovers(tracefs())
    assert left not in instances()
    assert not (tracefs() / "instances" / left).exists()
