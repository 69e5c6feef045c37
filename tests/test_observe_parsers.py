"""The observer's parsers on captured kernel texts (tests/fixtures/README.md says what each is)."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_until
from svcviz import procstat
from svcviz.observe import procfs, syscalls, titles
from svcviz.observe.sockdiag import (
    INET_DIAG_BC_JMP,
    INET_DIAG_BC_S_EQ,
    INET_DIAG_REQ_BYTECODE,
    NLMSG_DONE,
    NLMSG_HEADER,
    SOCK_DIAG_BY_FAMILY,
    parse_message,
    request,
    source_port_filter,
)
from svcviz.observe.sockets import addr_host, parse_netstat, parse_proc_net_tcp, tcp_mib_values

FIXTURES = Path(__file__).parent / "fixtures"
SS_STATES = {"ESTAB": "ESTABLISHED", "LISTEN": "LISTEN"}


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def ss_rows(name: str) -> set[tuple]:
    """(state, recv-q, send-q, local, peer) from captured `ss -tan` output, in our address form."""
    rows = set()
    for line in text(name).splitlines()[1:]:
        state, recv_q, send_q, local, peer = line.split()[:5]
        rows.add((SS_STATES[state], int(recv_q), int(send_q), local, peer))
    return rows


def as_ss(row, backlog_known: bool = False) -> tuple:
    """A row as ss prints it. ss shows a connection's queues in bytes; for LISTEN, the queue
    length and the backlog, which only netlink knows: /proc/net/tcp prints 0 there."""
    peer = "0.0.0.0:*" if row.remote == "0.0.0.0:0" else "[::]:*" if row.remote == "[::]:0" else row.remote
    send_q = None if row.state == "LISTEN" and not backlog_known else row.tx_queue
    return (row.state, row.rx_queue, send_q, row.local, peer)


def without_backlog(rows: set[tuple]) -> set[tuple]:
    return {
        (state, recv_q, None if state == "LISTEN" else send_q, local, peer)
        for state, recv_q, send_q, local, peer in rows
    }


def server_port(name: str) -> int:
    return next(
        row
        for row in parse_proc_net_tcp(text(name), socket.AF_INET if "6" not in name else socket.AF_INET6)
        if row.state == "LISTEN"
    ).local_port


def test_ipv4_rows_agree_with_ss():
    rows = parse_proc_net_tcp(text("proc_net_tcp.txt"))
    port = server_port("proc_net_tcp.txt")
    server_side = {as_ss(row) for row in rows if row.local_port == port}
    assert server_side == without_backlog(ss_rows("ss_ipv4.txt"))


def test_ipv6_rows_agree_with_ss():
    rows = parse_proc_net_tcp(text("proc_net_tcp6.txt"), socket.AF_INET6)
    port = server_port("proc_net_tcp6.txt")
    server_side = {as_ss(row) for row in rows if row.local_port == port}
    assert server_side == without_backlog(ss_rows("ss_ipv6.txt"))
    assert all(row.local.startswith("[::1]:") for row in rows)
    assert addr_host(rows[0].local) == "::1"


def test_listen_row_gives_queue_length():
    listen = [row for row in parse_proc_net_tcp(text("proc_net_tcp.txt")) if row.state == "LISTEN"]
    assert len(listen) == 1
    ss_listen = next(row for row in ss_rows("ss_ipv4.txt") if row[0] == "LISTEN")
    assert listen[0].rx_queue == ss_listen[1] == 2  # two waiting for accept()
    assert listen[0].tx_queue == 0  # /proc/net/tcp does not show the backlog
    assert listen[0].inode != 0
    assert listen[0].uid == 0  # its owner (root made it): what any user may read of it


def test_queued_connections_have_inode_zero():
    rows = parse_proc_net_tcp(text("proc_net_tcp.txt"))
    port = server_port("proc_net_tcp.txt")
    established = [row for row in rows if row.local_port == port and row.state == "ESTABLISHED"]
    listen = next(row for row in rows if row.state == "LISTEN")
    # every completed connection not yet accepted is a server-side row no file holds
    assert sum(row.inode == 0 for row in established) == listen.rx_queue
    assert sum(row.inode != 0 for row in established) == 1


def test_port_filter_keeps_both_sides_of_the_port_only():
    port = server_port("proc_net_tcp.txt")
    every = parse_proc_net_tcp(text("proc_net_tcp.txt"))
    only = parse_proc_net_tcp(text("proc_net_tcp.txt"), ports=frozenset([port]))
    assert only == [row for row in every if port in (row.local_port, row.remote_port)]
    assert parse_proc_net_tcp(text("proc_net_tcp.txt"), ports=frozenset([1])) == []


def test_netlink_dump_agrees_with_proc_net_tcp():
    raw = bytes.fromhex(text("sockdiag_dump_ipv4.hex").strip())
    rows, offset, done = [], 0, False
    while offset < len(raw):
        length, kind, _flags, _seq, _pid = NLMSG_HEADER.unpack_from(raw, offset)
        if kind == SOCK_DIAG_BY_FAMILY:
            rows.append(parse_message(raw, offset))
        done |= kind == NLMSG_DONE
        offset += (length + 3) & ~3
    port = server_port("proc_net_tcp.txt")
    proc_rows = [row for row in parse_proc_net_tcp(text("proc_net_tcp.txt")) if row.local_port == port]
    key = lambda row: (row.local, row.remote, row.state, row.inode)  # noqa: E731
    assert done
    assert sorted(map(key, rows)) == sorted(map(key, proc_rows))
    assert {as_ss(row, backlog_known=True) for row in rows} == ss_rows("ss_ipv4.txt")
    listen = next(row for row in rows if row.state == "LISTEN")
    assert (listen.rx_queue, listen.tx_queue) == (2, 2)  # two waiting; listen(2)


def test_netlink_request_asks_for_the_port():
    message = request(socket.AF_INET, 1 << 10, sport=6168, seq=7)
    length, kind, flags, seq, _ = NLMSG_HEADER.unpack_from(message)
    assert (length, kind, seq) == (len(message), SOCK_DIAG_BY_FAMILY, 7)
    assert flags & 0x300  # a dump
    assert message[NLMSG_HEADER.size + 8 : NLMSG_HEADER.size + 10] == (6168).to_bytes(2, "big")


def test_netstat_counters():
    lines = text("proc_net_netstat.txt").splitlines()
    names, values = next(
        (a.split(), b.split())
        for a, b in itertools.pairwise(lines)
        if a.startswith("TcpExt:") and b.startswith("TcpExt:")
    )
    table = dict(zip(names, values, strict=False))
    assert parse_netstat(text("proc_net_netstat.txt")) == (int(table["ListenOverflows"]), int(table["ListenDrops"]))
    assert parse_netstat("Ip: Forwarding\nIp: 1\n") == (0, 0)


def test_stat_with_parentheses_and_spaces_in_the_name():
    captured = text("proc_task_stat_odd_name.txt")
    stat = procstat.parse_stat(captured)
    assert stat.name == "odd) name (x"
    assert stat.state == "S"
    # proc(5) numbers the fields from 1; field 3 (state) is the first after the name
    field = dict(enumerate(captured.rsplit(")", 1)[1].split(), start=3))
    assert (stat.ppid, stat.pgrp, stat.session) == (int(field[4]), int(field[5]), int(field[6]))
    assert (stat.utime, stat.stime, stat.cutime, stat.cstime) == tuple(int(field[n]) for n in (14, 15, 16, 17))
    assert (stat.threads, stat.start) == (int(field[20]), int(field[22]))
    assert stat.rss == int(field[24]) * procstat.PAGE_SIZE


def test_zombie_stat():
    stat = procstat.parse_stat(text("proc_stat_zombie.txt"))
    assert (stat.name, stat.state, stat.rss, stat.zombie) == ("python", "Z", 0, True)


def test_stat_of_a_cut_short_or_vanished_process_is_none():
    assert procstat.stat_of("") is None
    assert procstat.stat_of(text("proc_stat_zombie.txt")[:40]) is None
    assert procstat.read_stat(2**22 + 1) is None  # above pid_max: no such process


def test_own_stat_read_live():
    stat = procstat.read_stat(os.getpid())
    assert (stat.pid, stat.ppid, stat.session, stat.pgrp) == (os.getpid(), os.getppid(), os.getsid(0), os.getpgrp())
    assert stat.state == "R"
    assert stat.pid in {s.pid for s in procstat.all_stats()}


def test_syscall_of_a_thread_blocked_in_recv():
    call = syscalls.parse(text("proc_task_syscall_recv.txt"), syscalls.table("x86_64"))
    assert (call.name, call.fd, call.number) == ("recvfrom", 14, 45)  # recvfrom(14, ...) on x86_64
    assert syscalls.parse("running\n").running
    assert syscalls.parse("running\n").name is None
    outside = syscalls.parse("-1 0x7ffd 0x0\n")
    assert (outside.name, outside.fd, outside.number) == (None, None, -1)
    assert syscalls.parse("") == syscalls.UNKNOWN


def test_syscall_numbers_per_architecture():
    x86, arm = syscalls.table("x86_64"), syscalls.table("aarch64")
    assert x86[288] == ("accept4", True) and arm[242] == ("accept4", True)
    assert x86[232] == ("epoll_wait", True)
    assert "epoll_wait" not in {name for name, _ in arm.values()}  # asm-generic has epoll_pwait only
    assert arm[22] == ("epoll_pwait", True) and x86[281] == ("epoll_pwait", True)
    assert x86[202] == ("futex", False) and arm[98] == ("futex", False)
    assert x86[61][0] == arm[260][0] == "wait4"
    assert syscalls.table("riscv64") == {}
    # every call of the brief is in both tables that have it, each number once
    for table in (x86, arm):
        assert len({name for name, _ in table.values()}) == len(table)
    futex = syscalls.parse("202 0x7f 0x80 0x0 0x0 0x0 0x0 0x7ffd 0x7f00\n", x86)
    assert (futex.name, futex.fd) == ("futex", None)  # no fd argument: none reported
    epoll = syscalls.parse("22 0x5 0xffff 0x400 0xffffffff 0x0 0x8 0x1 0x2\n", arm)
    assert (epoll.name, epoll.fd) == ("epoll_pwait", 5)
    unknown = syscalls.parse("999 0x1 0x2\n", x86)
    assert (unknown.name, unknown.number) == (None, 999)
    at_fdcwd = syscalls.parse("3 0xffffffffffffff9c 0x0\n", x86)
    assert at_fdcwd.fd is None


def test_titles_as_the_process_set_them():
    assert titles.title_of("nginx: worker process\0\0\0\0") == "nginx: worker process"
    assert titles.title_of("postgres: joe db 127.0.0.1(59934) idle\0" + " " * 20) == (
        "postgres: joe db 127.0.0.1(59934) idle"
    )
    assert titles.title_of("/usr/bin/python3\0-m\0svcviz\0") == "/usr/bin/python3 -m svcviz"
    assert titles.title_of("evil\x1b[2Jtitle\0") == "evil\\x1b[2Jtitle"
    assert titles.title_of("") == ""
    assert titles.user_name(0) == "root"
    assert titles.user_name(None) == ""
    assert titles.user_name(2**31 - 7) == str(2**31 - 7)


def test_socket_inode():
    assert procfs.socket_inode("socket:[185578]") == 185578
    assert procfs.socket_inode("pipe:[42]") is None
    assert procfs.socket_inode("/dev/null") is None


def run_bytecode(code: bytes, sport: int) -> bool:
    """The kernel's inet_diag_bc_run for the ops source_port_filter uses: accepted when the
    jumps land exactly on the end."""
    offset, left = 0, len(code)
    while left > 0:
        kind, yes, no = struct.unpack_from("=BBH", code, offset)
        if kind == INET_DIAG_BC_S_EQ:
            matched = sport == struct.unpack_from("=BBH", code, offset + 4)[2]
        elif kind == INET_DIAG_BC_JMP:
            matched = False
        else:
            raise AssertionError(f"unexpected op {kind}")
        step = yes if matched else no
        offset, left = offset + step, left - step
    return left == 0


def test_port_filter_bytecode_for_one_port_is_what_ss_builds():
    # ss, `sport = :6168`: {S_EQ, yes 8, no 12}, {0, 0, 6168}: a miss jumps 4 past the end.
    assert source_port_filter((6168,)) == struct.pack("=BBHBBH", 11, 8, 12, 0, 0, 6168)


def test_port_filter_bytecode_for_two_ports_ors_them():
    # ss, `sport = :80 or sport = :443`: the first test, a JMP to the end, the second test.
    assert source_port_filter((80, 443)) == struct.pack(
        "=BBHBBH" + "BBH" + "BBHBBH", 11, 8, 12, 0, 0, 80, 1, 4, 12, 11, 8, 12, 0, 0, 443
    )


@pytest.mark.parametrize("ports", [(6168,), (80, 443), (80, 443, 6168, 65535)])
def test_port_filter_bytecode_accepts_exactly_its_ports(ports):
    code = source_port_filter(ports)
    assert [port for port in (*ports, 0, 1, 79, 81, 8080, 65534) if run_bytecode(code, port)] == list(ports)


def test_port_filter_needs_a_port():
    with pytest.raises(ValueError):
        source_port_filter(())


def test_netlink_request_carries_the_bytecode_as_an_attribute():
    code = source_port_filter((6168, 6169))
    plain, filtered = request(socket.AF_INET, 0xFFFFFFFF), request(socket.AF_INET, 0xFFFFFFFF, bytecode=code)
    assert NLMSG_HEADER.unpack_from(filtered)[0] == len(filtered) == len(plain) + 4 + len(code)
    assert filtered[: len(plain)][NLMSG_HEADER.size :] == plain[NLMSG_HEADER.size :]
    assert struct.unpack_from("=HH", filtered, len(plain)) == (4 + len(code), INET_DIAG_REQ_BYTECODE)
    assert filtered[len(plain) + 4 :] == code


def test_epoll_fdinfo_names_what_it_watches():
    text = (
        "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n"
        "tfd:       11 events: 80000019 data:     557613713340  pos:0 ino:40e sdev:10\n"
        "tfd:        4 events:     2019 data:     55763e146e90  pos:0 ino:16e75e sdev:9\n"
    )
    assert procfs.parse_epoll_fdinfo(text) == [(11, 0x40E), (4, 0x16E75E)]
    assert procfs.parse_epoll_fdinfo("pos:\t0\n") == []


def test_server_side_states_are_told_apart():
    """The server's SYN_RECV row is half-open, unless its local client is already ESTABLISHED
    (a deferred accept); neither is a client's SYN_SENT."""
    from svcviz.observe.observer import _conn_state
    from svcviz.observe.snapshot import CONN_STATE_WORDS
    from svcviz.observe.sockets import TcpRow

    row = TcpRow("127.0.0.1:80", 80, "127.0.0.1:40000", 40000, "SYN_RECV", 0, 0, 0)
    assert _conn_state(row) == "syn_recv"
    assert _conn_state(row, frozenset({("127.0.0.1:80", "127.0.0.1:40000")})) == "deferred"
    assert CONN_STATE_WORDS["syn_recv"] == "half-open (SYN_RECV)"
    assert CONN_STATE_WORDS["deferred"] == "waiting for first bytes"
    assert CONN_STATE_WORDS["syn_sent"] == "knocking (SYN_SENT)"


def test_fdinfo_flags_tell_a_pipes_write_end():
    flags = procfs.parse_fdinfo_flags((FIXTURES / "proc_fdinfo_pipe_write.txt").read_text())
    assert flags == os.O_CLOEXEC | os.O_WRONLY
    assert procfs.parse_fdinfo_flags("pos:\t0\nflags:\t00\n") == os.O_RDONLY
    assert procfs.parse_fdinfo_flags("pos:\t0\n") is None


def test_io_gives_bytes_read_and_written():
    assert procfs.parse_io((FIXTURES / "proc_io.txt").read_text()) == (6976, 0)
    assert procfs.parse_io("") is None  # gone, or another user's process


def test_a_pipeline_fd_is_named_by_what_it_links_to():
    from svcviz.observe.pipes import kind_of, pipe_inode

    links = ["pipe:[3146422]", "/dev/pts/3", "/dev/null", "socket:[77]", "/tmp/x", "anon_inode:[eventfd]", ""]
    assert [kind_of(link) for link in links] == ["pipe", "tty", "null", "socket", "file", "other", "closed"]
    assert pipe_inode("pipe:[3146422]") == 3146422
    assert pipe_inode("socket:[77]") is None


def test_the_tcp_mib_values_line_is_found_whole():
    text = (FIXTURES / "proc_net_snmp.txt").read_text()
    assert (
        tcp_mib_values(text) == "Tcp: 1 200 120000 -1 644129 573089 9198 173331 0 4764998 4450635 289308 5551 184782 0"
    )
    assert tcp_mib_values(text.replace("Tcp:", "Xcp:")) is None
    assert tcp_mib_values("") is None


def test_children_and_descendants_come_from_the_kernels_lists_zombies_included():
    """A fork server counts its children with procstat.children (one read, not a stat per
    child): a child that exited unreaped still holds its slot, and is listed."""
    tree = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, time\n"
            "a = os.fork()\n"
            "if a == 0:\n"
            "    b = os.fork()\n"
            "    if b == 0: time.sleep(30)\n"
            "    time.sleep(30)\n"
            "z = os.fork()\n"
            "if z == 0: os._exit(0)\n"  # a zombie: never waited for
            "print(a, z, flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        live, zombie = map(int, tree.stdout.readline().split())
        assert sorted(procstat.children(tree.pid)) == sorted([live, zombie])
        grandchild = wait_until(lambda: procstat.children(live))  # the child forks it after we were told
        assert len(grandchild) == 1
        assert procstat.descendants(tree.pid)[0] == tree.pid
        assert sorted(procstat.descendants(tree.pid)) == sorted([tree.pid, live, zombie, *grandchild])
        assert procstat.children(2**22 + 7) == []  # no such process: no children, no error
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()
