"""What the kernel says, through the tools a person would use (ss, ps, /proc).

Tests judge the models from here, never from the servers' own words.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess


def ss(*args: str) -> list[list[str]]:
    out = subprocess.run(["ss", "-H", *args], capture_output=True, text=True, check=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def listen_queue(port: int) -> tuple[int, int] | None:
    """(Recv-Q, Send-Q) of the LISTEN socket on port: queue length and backlog."""
    rows = ss("-ltn", f"sport = :{port}")
    return (int(rows[0][1]), int(rows[0][2])) if rows else None


def tcp_states(port: int) -> list[str]:
    """The states of the server-side rows of connections to port (LISTEN excluded)."""
    return [row[0] for row in ss("-tan", f"sport = :{port}") if row[0] != "LISTEN"]


def knocking(port: int) -> int:
    """Client sockets still in SYN_SENT towards port: their SYN got no answer (a full queue)."""
    return len(ss("-tn", "state", "syn-sent", f"dport = :{port}"))


def ps_threads(pid: int) -> int:
    """The threads of pid, as `ps -L` lists them (0 when it is gone)."""
    out = subprocess.run(["ps", "-L", "-o", "tid=", "-p", str(pid)], capture_output=True, text=True).stdout
    return len(out.split())


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> dict[int, str]:
    """pid -> state letter of each child, from ps."""
    out = subprocess.run(["ps", "-o", "pid=,stat=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(p): s[0] for p, s in (line.split() for line in out.splitlines())}


def zombies(pid: int) -> int:
    return sum(1 for state in children(pid).values() if state == "Z")


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def socket_fds(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def ask(sock: socket.socket, line: str) -> str:
    sock.sendall(line.encode() + b"\r\n")
    return readline(sock)


def readline(sock: socket.socket) -> str:
    """One reply line; what follows it stays in the kernel for the next call."""
    data = b""
    while not data.endswith(b"\n"):
        peeked = sock.recv(4096, socket.MSG_PEEK)
        if not peeked:
            break
        newline = peeked.find(b"\n")
        data += sock.recv(newline + 1 if newline >= 0 else len(peeked))
    return data.decode().rstrip("\n")
