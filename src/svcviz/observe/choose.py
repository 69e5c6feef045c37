"""Which server the user means: `--port P` (or `--addr HOST:PORT`) -> the process that is
the server, or, when no process holding the listener may be read, the listener's owner.

Several servers may listen on one port (on 127.0.0.1 and 127.0.0.2, say): then the user
is told which were found and asked to choose, never given one of them silently. One
server may hold several listening sockets on the port (0.0.0.0 and [::], nginx), or its
workers one each (SO_REUSEPORT): those are one server.
"""

from __future__ import annotations

import os
import pwd
from typing import NamedTuple

from svcviz import procstat
from svcviz.observe import procfs
from svcviz.observe.sockets import TcpRow, addr_host

WILDCARDS = {"0.0.0.0", "::"}


class Ambiguous(Exception):
    """Several servers match: the message names them (one line)."""


class Choice(NamedTuple):
    """root: the server's topmost process, or None when no process holding its listener
    may be read (then rows tell all we know: ss's view); rows: its listening sockets."""

    root: procstat.Stat | None
    rows: tuple[TcpRow, ...]


def user_name(uid: int | None) -> str:
    if uid is None:
        return "its owner"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def run_as(*users: str) -> str:
    """ "run as root or as nginx": who may read what a user cannot."""
    return " or as ".join(["run as root", *sorted(set(users) - {"root"})])


def owner_of(pid: int) -> str:
    """Who runs pid (any user may stat /proc/PID)."""
    try:
        return user_name(os.stat(f"/proc/{pid}").st_uid)
    except OSError:
        return "its owner"


def on_address(rows: list[TcpRow], port: int, addr: tuple[str, int] | None) -> list[TcpRow]:
    """The listening rows on port, or only the one(s) on addr's host (a v4-mapped or
    wildcard spelling of the same host counts)."""
    rows = [row for row in rows if row.local_port == port]
    if addr is None:
        return rows
    host = addr[0]
    return [row for row in rows if addr_host(row.local) in (host, f"::ffff:{host}")]


def choose(rows: list[TcpRow], describe: str) -> Choice:
    """The one server holding rows (listening sockets on one port); Ambiguous if several.
    describe: how the user named it ("port 6168")."""
    holders = _holders({row.inode for row in rows})
    groups = _group(rows, holders)
    if len(groups) > 1:
        found = "; ".join(_describe(group, holders) for group in groups)
        raise Ambiguous(
            f"{describe}: {len(groups)} servers listen: {found}: choose one with --addr HOST:PORT or --pid PID"
        )
    group = groups[0]
    return Choice(_root(group, holders), tuple(group))


def _holders(inodes: set[int]) -> dict[int, list[procstat.Stat]]:
    """inode -> the readable processes holding it (another user's fds we may not read)."""
    found: dict[int, list[procstat.Stat]] = {}
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            held = procfs.sockets_held(int(name), wanted)
        except procfs.FdTableUnreadable:
            continue
        if held:
            stat = procstat.read_stat(int(name))
            if stat is not None:
                for inode in held:
                    found.setdefault(inode, []).append(stat)
    return found


def _group(rows: list[TcpRow], holders: dict[int, list[procstat.Stat]]) -> list[list[TcpRow]]:
    """Rows of one server together: held by a common process, or on one address by sibling
    processes (a prefork pool, each worker with its own SO_REUSEPORT socket, forked by one
    parent); rows no readable process holds, together per owner and address (all any user
    can tell; 0.0.0.0 and [::] are one address: a dual-stack server listens on both)."""
    groups: list[tuple[set[tuple[object, ...]], list[TcpRow]]] = []  # (keys, rows)
    for row in sorted(rows, key=lambda row: (row.local, row.inode)):
        held = holders.get(row.inode, [])
        host = addr_host(row.local)
        keys: set[tuple[object, ...]] = {("pid", stat.pid) for stat in held}
        keys |= {("parent", stat.ppid, host) for stat in held if stat.ppid > 1}
        keys = keys or {("uid", row.uid, "*" if host in WILDCARDS else host)}
        for group in groups:
            if group[0] & keys:
                group[0].update(keys)
                group[1].append(row)
                break
        else:
            groups.append((keys, [row]))
    return [group for _, group in groups]


def _root(rows: list[TcpRow], holders: dict[int, list[procstat.Stat]]) -> procstat.Stat | None:
    """The topmost process holding them; the parent of the topmost holders when they are
    siblings (workers that share the listener forked by a parent that holds it too, or
    whose fds we may not read: nginx's root master seen by its nobody workers)."""
    held = {stat.pid: stat for row in rows for stat in holders.get(row.inode, [])}
    if not held:
        return None
    tops = [stat for stat in held.values() if stat.ppid not in held]
    parents = {stat.ppid for stat in tops}
    if len(parents) == 1 and (parent := parents.pop()) > 1:
        above = procstat.read_stat(parent)
        if above is not None and (len(tops) > 1 or (_unreadable(parent) and above.name == tops[0].name)):
            return above
    return min(tops, key=lambda stat: (stat.start, stat.pid))


def _unreadable(pid: int) -> bool:
    try:
        procfs.read_fd_sockets(pid)
    except procfs.FdTableUnreadable:
        return True
    return False


def _describe(rows: list[TcpRow], holders: dict[int, list[procstat.Stat]]) -> str:
    addrs = ", ".join(sorted({row.local for row in rows}))
    root = _root(rows, holders)
    if root is None:
        return f"{addrs} ({user_name(rows[0].uid)}'s, its process cannot be read)"
    return f"{addrs} (pid {root.pid} {root.name})"
