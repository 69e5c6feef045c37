"""sock_diag netlink (NETLINK_INET_DIAG): the kernel lists the TCP sockets we ask for.

This is what `ss` uses. Asking for one port at a time keeps the cost with the server's own
sockets: the kernel skips the rest of the table without copying it to us.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

from svcviz.observe.sockets import TCP_STATES, TcpRow

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NO_COOKIE = 0xFFFFFFFF
ALL_STATES = 0xFFFFFFFF
DUMP_TIMEOUT = 2.0

NLMSG_HEADER = struct.Struct("=IHHII")
# struct inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid.
REQUEST = struct.Struct("=BBBBI")
SOCKID_PORTS = struct.Struct("!HH")
# nlmsghdr, then struct inet_diag_msg: family, state, timer, retrans; sockid (ports in
# network order, src, dst, ifindex and cookie skipped); expires, rqueue, wqueue, uid, inode.
MESSAGE = struct.Struct("=IHHII4B2H16s16s12x5I")
ADDR_LEN = {socket.AF_INET: 4, socket.AF_INET6: 16}
SWAP_PORTS = sys.byteorder == "little"


def request(family: int, states: int, sport: int = 0, dport: int = 0, seq: int = 1) -> bytes:
    """A dump request; the kernel's dump skips sockets whose sport/dport differ when set."""
    body = (REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, states)
            + SOCKID_PORTS.pack(sport, dport) + bytes(32) + struct.pack("=III", 0, NO_COOKIE, NO_COOKIE))
    return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY,
                             NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def _port(raw: int) -> int:
    return ((raw & 0xFF) << 8) | (raw >> 8) if SWAP_PORTS else raw


class _Hosts(dict):
    """(family, packed address) -> text, remembered: a server's sockets share few addresses."""

    def __missing__(self, key: tuple[int, bytes]) -> str:
        family, packed = key
        host = socket.inet_ntop(family, packed[:ADDR_LEN.get(family, 4)])
        text = f"[{host}]" if family == socket.AF_INET6 else host
        if len(self) > 4096:
            self.clear()
        self[key] = text
        return text


def parse_message(message: bytes | memoryview, offset: int = 0, hosts: dict | None = None) -> TcpRow:
    """The socket in one netlink message (header included) at offset."""
    hosts = _Hosts() if hosts is None else hosts
    (_len, _kind, _flags, _seq, _pid, family, state, _timer, _retrans, sport, dport, src, dst,
     _expires, rqueue, wqueue, _uid, inode) = MESSAGE.unpack_from(message, offset)
    sport, dport = _port(sport), _port(dport)
    return TcpRow(f"{hosts[family, src]}:{sport}", sport, f"{hosts[family, dst]}:{dport}", dport,
                  TCP_STATES.get(state, str(state)), rqueue, wqueue, inode, family)


class SockDiag:
    """One netlink socket, reused for every dump; OSError at construction if unavailable."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self.sock.bind((0, 0))
        self.sock.settimeout(DUMP_TIMEOUT)  # the kernel answers at once; never hang a sample
        self._seq = 0
        self._buffer = bytearray(1 << 17)
        self._hosts = _Hosts()
        self._known_rows: dict[tuple, dict[bytes, TcpRow]] = {}  # per kind of dump: message -> row

    def dump(self, family: int, states: int = ALL_STATES, sport: int = 0, dport: int = 0) -> list[TcpRow]:
        self._seq += 1
        self.sock.send(request(family, states, sport, dport, self._seq))
        rows: list[TcpRow] = []
        buffer, hosts, header, message = self._buffer, self._hosts, NLMSG_HEADER.unpack_from, MESSAGE.size
        view = memoryview(buffer)
        key = (family, states, sport, dport)
        known, seen = self._known_rows.get(key, {}), {}
        self._known_rows[key] = seen
        while True:
            size = self.sock.recv_into(buffer)
            offset = 0
            while offset + NLMSG_HEADER.size <= size:
                length, kind, _flags, seq, _pid = header(buffer, offset)
                if length < NLMSG_HEADER.size:
                    return rows
                if seq == self._seq:
                    if kind == SOCK_DIAG_BY_FAMILY and length >= message:
                        # Most sockets are as they were last time: the same bytes, the same row.
                        raw = bytes(view[offset + NLMSG_HEADER.size:offset + length])
                        row = known.get(raw) or parse_message(buffer, offset, hosts)
                        seen[raw] = row
                        rows.append(row)
                    elif kind == NLMSG_DONE:
                        return rows
                    elif kind == NLMSG_ERROR:
                        error = -struct.unpack_from("=i", buffer, offset + NLMSG_HEADER.size)[0]
                        raise OSError(error, f"sock_diag: {os.strerror(error)}")
                offset += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()
