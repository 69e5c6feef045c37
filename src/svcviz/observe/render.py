"""A Snapshot drawn with rich, for `svcviz watch --once`: listen queue, process tree, connections."""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from svcviz.observe.architecture import judge
from svcviz.observe.snapshot import STATE_WORDS as STATES
from svcviz.observe.snapshot import Fd, Process, Snapshot
from svcviz.observe.waits import wait_text
from svcviz.plain import plain

STATE_STYLES = {"R": "green", "Z": "bold red", "T": "yellow", "D": "magenta"}
CONN_STYLES = {
    "queued": "yellow",
    "accepted": "green",
    "syn_sent": "red",
    "syn_recv": "red",
    "deferred": "yellow",
    "closing": "dim",
}


def render(snapshot: Snapshot) -> RenderableType:
    return Group(
        _header(snapshot),
        _architecture(snapshot),
        _listen(snapshot),
        _tree(snapshot),
        _connections(snapshot),
        *_notes(snapshot),
    )


def _architecture(snapshot: Snapshot) -> RenderableType:
    architecture = judge(snapshot)
    lines = [Text.assemble("architecture: ", (architecture.name, "bold magenta"))]
    lines += [Text(f"  {plain(line)}", style="dim") for line in architecture.evidence]
    return Group(*lines)


def _header(snapshot: Snapshot) -> Text:
    stamp = time.strftime("%H:%M:%S", time.localtime(snapshot.time))
    text = Text.assemble(
        ("svcviz watch", "bold"),
        f"  {stamp}  root pid {snapshot.root_pid if snapshot.root_pid is not None else 'unknown'}  ",
        f"{len(snapshot.processes)} processes ({len(snapshot.zombies)} zombies), "
        f"{snapshot.thread_total} threads, {len(snapshot.connections)} connections",
    )
    if snapshot.netns_title:
        text.append(f"  in {plain(snapshot.netns_title)}", style="bold cyan")
    return text


def _listen(snapshot: Snapshot) -> RenderableType:
    if not snapshot.listen:
        return Text("no listening socket: new connections are refused", style="bold red")
    lines = []
    for sock in snapshot.listen:
        # The accept queue holds backlog+1 completed connections before SYNs are dropped.
        full = sock.queue > sock.backlog
        lines.append(
            Text.assemble(
                f"listen {sock.addr}  queue ",
                (f"{sock.queue}/{sock.backlog}", "bold red" if full else "bold"),
                (
                    f"  (pid {sock.pid} fd {sock.fd}"
                    + (f"; held by {len(sock.holders)} processes" if len(sock.holders) > 1 else "")
                    + (f"; its epoll: pid {', '.join(map(str, sock.pollers))}" if sock.pollers else "")
                    + ")"
                )
                if sock.pid is not None
                else f"  (owner uid {sock.uid}, inode {sock.inode})",
                (" FULL: SYNs dropped" if full else "", "red"),
            )
        )
    counters = snapshot.counters
    lines.append(
        Text(
            f"ListenOverflows {counters.listen_overflows} (+{counters.overflows_delta})  "
            f"ListenDrops {counters.listen_drops} (+{counters.drops_delta})  (system-wide)",
            style="dim",
        )
    )
    return Group(*lines)


def _label(process: Process) -> Text:
    text = Text.assemble(
        (f"{process.pid}", "bold"),
        f" {plain(process.title or process.name)} ",  # a process names itself: never let it write controls
        (STATES.get(process.state, process.state), STATE_STYLES.get(process.state, "")),
    )
    if process.adopted:
        text.append(f"  orphan, adopted by {process.ppid}", style="yellow")
    if not process.zombie:
        text.append(
            f"  {process.thread_count} thread{'s' if process.thread_count != 1 else ''}  rss {process.rss // 1024} KiB"
        )
    if process.user:
        text.append(f"  {plain(process.user)}", style="dim")
    if not process.readable:
        text.append("  fds unreadable (permission denied)", style="red")
    return text


def _fds_text(fds: tuple[Fd, ...]) -> str:
    """Sockets one by one; the other fds (files, pipes, other sockets) as a list of numbers."""
    parts = []
    for fd in fds:
        if fd.kind == "listen":
            parts.append(f"{fd.fd} listen {fd.local or ''}".rstrip())
        elif fd.kind == "conn":
            parts.append(f"{fd.fd} conn {fd.peer} {fd.tcp_state or ''}".rstrip())
    others = [str(fd.fd) for fd in fds if fd.kind == "other"]
    if others:
        parts.append("other " + " ".join(others))
    return "fds: " + ", ".join(parts)


def _tree(snapshot: Snapshot) -> RenderableType:
    tree = Tree(Text("processes", style="bold"))
    pids = {p.pid for p in snapshot.processes}
    nodes: dict[int, Tree] = {}
    for process in snapshot.processes:  # parents come before their children
        parent = nodes.get(process.ppid) if process.ppid in pids and not process.adopted else None
        node = (parent or tree).add(_label(process))
        nodes[process.pid] = node
        if process.threads:
            node.add(
                Text(
                    "threads: "
                    + ", ".join(f"{t.tid} {plain(t.name)} {wait_text(t, process)}" for t in process.threads),
                    style="cyan",
                )
            )
        if process.fds:
            node.add(Text(_fds_text(process.fds), style="dim"))
    return tree


def _connections(snapshot: Snapshot) -> RenderableType:
    if not snapshot.connections:
        return Text("no connections", style="dim")
    table = Table("client", "server", "state", "tcp", "owner", title="connections", title_justify="left")
    for conn in snapshot.connections:
        owner = "unknown" if conn.owner_unknown else "" if conn.pid is None else f"pid {conn.pid} fd {conn.fd}"
        if conn.tid is not None and conn.tid != conn.pid:
            owner += f" thread {conn.tid}"
        table.add_row(
            conn.client, conn.server, Text(conn.state, CONN_STYLES.get(conn.state, "")), conn.tcp_state, owner
        )
    return table


def _notes(snapshot: Snapshot) -> list[Text]:
    return [Text(f"not readable: {what}", style="red") for what in snapshot.unreadable] + [
        Text(note, style="bold yellow") for note in snapshot.notes
    ]
