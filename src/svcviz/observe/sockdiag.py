"""sock_diag netlink (NETLINK_INET_DIAG): the kernel lists the TCP sockets we ask for.

This is what `ss` uses. Asking for one port at a time keeps the cost with the server's own
sockets: the kernel skips the rest of the table without copying it to us.
"""

from __future__ import annotations

import socket
import struct

from svcviz.observe.sockets import TCP_STATES, TcpRow, format_addr

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
# struct inet_diag_msg after its sockid: expires, rqueue, wqueue, uid, inode.
MSG_HEAD = struct.Struct("=BBBB")
MSG_TAIL = struct.Struct("=IIIII")
MSG_SIZE = 72
ADDR_LEN = {socket.AF_INET: 4, socket.AF_INET6: 16}


def request(family: int, states: int, sport: int = 0, dport: int = 0, seq: int = 1) -> bytes:
    """A dump request; the kernel's dump skips sockets whose sport/dport differ when set."""
    body = (REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, states)
            + SOCKID_PORTS.pack(sport, dport) + bytes(32) + struct.pack("=III", 0, NO_COOKIE, NO_COOKIE))
    return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY,
                             NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def parse_message(payload: bytes | memoryview) -> TcpRow:
    family, state, _timer, _retrans = MSG_HEAD.unpack_from(payload, 0)
    sport, dport = SOCKID_PORTS.unpack_from(payload, 4)
    size = ADDR_LEN.get(family, 4)
    src = bytes(payload[8:8 + size])
    dst = bytes(payload[24:24 + size])
    _expires, rqueue, wqueue, _uid, inode = MSG_TAIL.unpack_from(payload, 52)
    return TcpRow(format_addr(family, src, sport), sport, format_addr(family, dst, dport), dport,
                  TCP_STATES.get(state, str(state)), rqueue, wqueue, inode, family)


class SockDiag:
    """One netlink socket, reused for every dump; OSError at construction if unavailable."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self.sock.bind((0, 0))
        self.sock.settimeout(DUMP_TIMEOUT)  # the kernel answers at once; never hang a sample
        self._seq = 0
        self._buffer = bytearray(1 << 17)

    def dump(self, family: int, states: int = ALL_STATES, sport: int = 0, dport: int = 0) -> list[TcpRow]:
        self._seq += 1
        self.sock.send(request(family, states, sport, dport, self._seq))
        rows: list[TcpRow] = []
        view = memoryview(self._buffer)
        while True:
            size = self.sock.recv_into(self._buffer)
            offset = 0
            while offset + NLMSG_HEADER.size <= size:
                length, kind, _flags, seq, _pid = NLMSG_HEADER.unpack_from(self._buffer, offset)
                if length < NLMSG_HEADER.size:
                    return rows
                if seq == self._seq:
                    if kind == NLMSG_DONE:
                        return rows
                    if kind == NLMSG_ERROR:
                        error = -struct.unpack_from("=i", self._buffer, offset + NLMSG_HEADER.size)[0]
                        raise OSError(error, f"sock_diag: {error}")
                    if kind == SOCK_DIAG_BY_FAMILY and length >= NLMSG_HEADER.size + MSG_SIZE:
                        rows.append(parse_message(view[offset + NLMSG_HEADER.size:offset + length]))
                offset += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()
