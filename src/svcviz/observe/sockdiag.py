"""sock_diag netlink (NETLINK_INET_DIAG): the kernel lists the TCP sockets we ask for.

This is what `ss` uses. A dump is filtered in the kernel by the server's ports (an
inet_diag bytecode program, as `ss` builds for `sport = :P`), so the kernel copies us only
the server's own sockets, listeners and connections in one answer; the rest of the table is
skipped without being copied.
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
# Every state a socket has in the kernel's listener and connection tables (ESTABLISHED 1 ..
# NEW_SYN_RECV 12), without TCP_BOUND_INACTIVE (13): asking for that one makes the dump walk
# the bind table too, every bound socket of the machine (~1.5 ms with 2,000 sockets), to
# return sockets merely bound to a port (state CLOSE, no peer), which are not connections.
TABLED_STATES = (1 << 13) - 1
DUMP_TIMEOUT = 2.0

# linux/inet_diag.h: the request's bytecode attribute and the ops used here.
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_S_EQ = 11
NLMSG_HEADER = struct.Struct("=IHHII")
NLATTR = struct.Struct("=HH")  # struct nlattr: length (header included), type
BC_OP = struct.Struct("=BBH")  # struct inet_diag_bc_op: code, yes, no (jumps in bytes)
# struct inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid.
REQUEST = struct.Struct("=BBBBI")
SOCKID_PORTS = struct.Struct("!HH")
# After the nlmsghdr, struct inet_diag_msg as parse_message reads it: family, state, (timer,
# retrans), sockid's sport and dport in network order (swapped on reading), src, dst,
# (ifindex, cookie; then expires), rqueue, wqueue, uid, inode.
BODY = struct.Struct("=BB2xHH16s16s16x4I")
MESSAGE_SIZE = NLMSG_HEADER.size + BODY.size  # what a message is at least (attributes may follow)
ADDR_LEN: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}
SWAP_PORTS = sys.byteorder == "little"


def source_port_filter(ports: tuple[int, ...]) -> bytes:
    """Bytecode that accepts a socket whose local port is one of ports (`sport = :P or ...`).

    The kernel runs it from the first op: a test that holds moves on by its `yes`, one that
    fails by its `no`; the socket is accepted when that lands exactly on the end, rejected
    when it lands past it. So each port is an S_EQ (with the port in the `no` of a second
    op) whose failure jumps to the next port's test, followed by a JMP to the end."""
    if not ports:
        raise ValueError("a port filter needs at least one port")
    code = b""
    for port in reversed(ports):
        if code:  # a match here jumps over the remaining tests to the end
            code = BC_OP.pack(INET_DIAG_BC_JMP, BC_OP.size, len(code) + BC_OP.size) + code
        # yes: the next op (the JMP, or the end); no: past the JMP, at the next test (or past the end)
        code = BC_OP.pack(INET_DIAG_BC_S_EQ, 2 * BC_OP.size, 3 * BC_OP.size) + BC_OP.pack(0, 0, port) + code
    return code


def request(family: int, states: int, sport: int = 0, dport: int = 0, seq: int = 1, bytecode: bytes = b"") -> bytes:
    """A dump request; the kernel's dump skips sockets whose sport/dport differ when set,
    and those the bytecode (source_port_filter) rejects."""
    body = (
        REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, states)
        + SOCKID_PORTS.pack(sport, dport)
        + bytes(32)
        + struct.pack("=III", 0, NO_COOKIE, NO_COOKIE)
    )
    if bytecode:
        body += NLATTR.pack(NLATTR.size + len(bytecode), INET_DIAG_REQ_BYTECODE) + bytecode
    return (
        NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
    )


class _Hosts(dict[tuple[int, bytes], str]):
    """(family, packed address) -> text, remembered: a server's sockets share few addresses."""

    def __missing__(self, key: tuple[int, bytes]) -> str:
        family, packed = key
        host = socket.inet_ntop(family, packed[: ADDR_LEN.get(family, 4)])
        text = f"[{host}]" if family == socket.AF_INET6 else host
        if len(self) > 4096:
            self.clear()
        self[key] = text
        return text


def parse_message(
    message: bytes | memoryview, offset: int = 0, hosts: dict[tuple[int, bytes], str] | None = None
) -> TcpRow:
    """The socket in one netlink message (header included) at offset."""
    hosts = _Hosts() if hosts is None else hosts
    family, state, sport, dport, src, dst, rqueue, wqueue, uid, inode = BODY.unpack_from(
        message, offset + NLMSG_HEADER.size
    )
    if SWAP_PORTS:
        sport, dport = ((sport & 0xFF) << 8) | (sport >> 8), ((dport & 0xFF) << 8) | (dport >> 8)
    return TcpRow(
        f"{hosts[family, src]}:{sport}",
        sport,
        f"{hosts[family, dst]}:{dport}",
        dport,
        TCP_STATES.get(state) or str(state),
        rqueue,
        wqueue,
        inode,
        family,
        uid,
    )


class _Chunk:
    """What one recv() of a dump brought: its bytes, its rows, and whether it ended the dump."""

    __slots__ = ("by_message", "data", "done", "rows")

    def __init__(self, data: bytes, rows: list[TcpRow], by_message: dict[bytes, TcpRow]) -> None:
        self.data = data
        self.rows = rows
        self.by_message = by_message
        self.done = False  # set by the parse that finds the dump's end


class SockDiag:
    """One netlink socket, reused for every dump; OSError at construction if unavailable."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        """sock: a netlink socket made in another network namespace (it answers for that one)."""
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self.sock.bind((0, 0))
        self.sock.settimeout(DUMP_TIMEOUT)  # the kernel answers at once; never hang a sample
        self._buffer = bytearray(1 << 17)
        self._hosts = _Hosts()
        self._seqs: dict[tuple[object, ...], int] = {}  # per kind of dump: its sequence number
        # per kind of dump: what the last one received, and the rows it returned
        self._known: dict[tuple[object, ...], tuple[list[_Chunk], list[TcpRow]]] = {}
        self._answered = True  # the last dump was read to its end

    def dump(
        self, family: int, states: int = ALL_STATES, sport: int = 0, dport: int = 0, sports: tuple[int, ...] = ()
    ) -> list[TcpRow]:
        """The sockets asked for (sports: local port one of these, filtered in the kernel).
        Each kind of dump keeps its sequence number, so that an unchanged answer comes back
        as the same bytes: a received chunk equal to the last dump's is not parsed again
        (most of a server's sockets stay as they were), and an answer equal to the last one
        is the same list (what a caller derives from it can be kept by identity: it must
        not change it)."""
        key = (family, states, sport, dport, sports)
        seq = self._seqs.setdefault(key, len(self._seqs) + 1)
        if not self._answered:
            self._drain()
        self._answered = False
        self.sock.send(request(family, states, sport, dport, seq, source_port_filter(sports) if sports else b""))
        known, known_rows = self._known.pop(key, ([], []))
        chunks: list[_Chunk] = []
        seen: dict[bytes, TcpRow] | None = None  # the last answer's rows by message, made when first needed
        view = memoryview(self._buffer)
        while True:
            size = self.sock.recv_into(self._buffer)
            index = len(chunks)
            chunk = known[index] if index < len(known) and view[:size] == known[index].data else None
            if chunk is None:
                if seen is None:
                    seen = {raw: row for old in known for raw, row in old.by_message.items()}
                chunk = self._parse(bytes(view[:size]), seq, seen)
            chunks.append(chunk)
            if chunk.done:
                break
        self._answered = True
        if len(chunks) == len(known) and all(a is b for a, b in zip(chunks, known, strict=True)):
            rows = known_rows
        else:
            rows = [row for chunk in chunks for row in chunk.rows]
        self._known[key] = (chunks, rows)
        return rows

    def _drain(self) -> None:
        """Drop whatever an earlier dump left unread (one cut short by an error), so that
        every message received after the request answers it, even with a reused number."""
        self.sock.settimeout(0)
        try:
            while self.sock.recv_into(self._buffer):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            self.sock.settimeout(DUMP_TIMEOUT)

    def _parse(self, data: bytes, seq: int, by_message: dict[bytes, TcpRow]) -> _Chunk:
        """The rows of one received chunk; a message seen in the last dump (by_message) is
        not parsed again either (the same bytes, the same row)."""
        rows: list[TcpRow] = []
        mine: dict[bytes, TcpRow] = {}
        chunk = _Chunk(data, rows, mine)
        hosts, header, known, head, message, end = (
            self._hosts,
            NLMSG_HEADER.unpack_from,
            by_message.get,
            NLMSG_HEADER.size,
            MESSAGE_SIZE,
            len(data),
        )
        offset = 0
        while offset + head <= end:
            length, kind, _flags, msg_seq, _pid = header(data, offset)
            if length < head:
                chunk.done = True
                return chunk
            if msg_seq == seq:
                if kind == SOCK_DIAG_BY_FAMILY and length >= message:
                    raw = data[offset + head : offset + length]
                    row = known(raw) or parse_message(data, offset, hosts)
                    mine[raw] = row
                    rows.append(row)
                elif kind == NLMSG_DONE:
                    chunk.done = True
                    return chunk
                elif kind == NLMSG_ERROR:
                    error = -struct.unpack_from("=i", data, offset + head)[0]
                    raise OSError(error, f"sock_diag: {os.strerror(error)}")
            offset += (length + 3) & ~3
        return chunk

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SockDiag:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
