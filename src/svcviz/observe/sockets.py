"""TCP sockets as the kernel lists them: one row type, read from /proc/net/tcp{,6}.

sock_diag netlink (sockdiag.py) is the fast route; this text is the fallback and what the
parser tests read. Both give the same TcpRow.
"""

from __future__ import annotations

import itertools
import socket
import sys
from collections import namedtuple

from svcviz.procstat import read_text

# include/net/tcp_states.h; NEW_SYN_RECV is how netlink names a half-open request.
TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",
}
LISTEN = 10
SYN_SENT = 2


# One socket. A named tuple, not a dataclass: a sample makes a thousand of them (and
# collections', not typing's: `typing` costs a one-shot `watch --once` more than its sample).
#   local, remote: "127.0.0.1:6168", "[::1]:6168"; local_port, remote_port: int
#   state: ESTABLISHED, LISTEN, ...
#   rx_queue: LISTEN: connections waiting for accept()
#   tx_queue: LISTEN: the backlog listen() was given (netlink only: /proc/net/tcp prints 0)
#   inode: 0: no file holds it (in the accept queue, or orphaned while closing)
#   uid: its owner (who made it), what any user may read of another user's socket
TcpRow = namedtuple(
    "TcpRow",
    ["local", "local_port", "remote", "remote_port", "state", "rx_queue", "tx_queue", "inode", "family", "uid"],
    defaults=[socket.AF_INET, None],
)


def format_addr(family: int, packed: bytes, port: int) -> str:
    host = socket.inet_ntop(family, packed)
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"


def addr_host(addr: str) -> str:
    """ "127.0.0.1:80" -> "127.0.0.1", "[::1]:80" -> "::1"."""
    return addr.rsplit(":", 1)[0].strip("[]")


def _proc_addr(family: int, text: str) -> tuple[str, int]:
    """/proc/net/tcp prints each 32-bit word of the address in host byte order."""
    hexaddr, hexport = text.split(":")
    raw = bytes.fromhex(hexaddr)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    port = int(hexport, 16)
    return format_addr(family, raw, port), port


def parse_proc_net_tcp(text: str, family: int = socket.AF_INET, ports: frozenset[int] | None = None) -> list[TcpRow]:
    """Rows of /proc/net/tcp (or tcp6 with AF_INET6); with ports, only rows whose local or
    remote port is one of them (the cheap test first: most rows are someone else's)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        if ports is not None:
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
            if lport not in ports and rport not in ports:
                continue
        local, lport = _proc_addr(family, fields[1])
        remote, rport = _proc_addr(family, fields[2])
        tx, rx = fields[4].split(":")
        rows.append(
            TcpRow(
                local,
                lport,
                remote,
                rport,
                TCP_STATES.get(int(fields[3], 16), fields[3]),
                int(rx, 16),
                int(tx, 16),
                int(fields[9]),
                family,
                int(fields[7]),
            )
        )
    return rows


def read_proc_net_tcp(ports: frozenset[int] | None = None, base: str = "/proc/net") -> list[TcpRow]:
    """base: /proc/PID/net for the tables of PID's network namespace."""
    rows = []
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            with open(f"{base}/{name}") as f:
                rows += parse_proc_net_tcp(f.read(), family, ports)
        except OSError:
            pass  # no IPv6 in this kernel
    return rows


def parse_netstat(text: str) -> tuple[int, int]:
    """(ListenOverflows, ListenDrops) from /proc/net/netstat: TcpExt name and value lines."""
    lines = text.splitlines()
    for names, values in itertools.pairwise(lines):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", 0)), int(table.get("ListenDrops", 0))
    return 0, 0


def read_netstat(base: str = "/proc/net") -> tuple[int, int]:
    """base: /proc/PID/net for the counters of PID's network namespace."""
    text = read_text(f"{base}/netstat")  # raw os calls: read every sample
    return parse_netstat(text) if text is not None else (0, 0)


def tcp_mib_values(text: str) -> str | None:
    """The values line of the Tcp MIB in /proc/net/snmp (segments in and out, opens, resets,
    connections established, for IPv4 and IPv6 alike), as the kernel wrote it: compared
    whole, never parsed further. None when the file has none."""
    lines = text.splitlines()
    for names, values in itertools.pairwise(lines):
        if names.startswith("Tcp:") and values.startswith("Tcp:"):
            return values
    return None


def read_tcp_mib(base: str = "/proc/net") -> str | None:
    """base: /proc/PID/net for PID's network namespace. None when it cannot be read."""
    text = read_text(f"{base}/snmp")
    return tcp_mib_values(text) if text is not None else None
