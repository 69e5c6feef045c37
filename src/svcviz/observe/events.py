"""What changed between two snapshots, as events: the dashboard's log and the scenarios' facts.

Only the kernel's view is compared, so an event is something the kernel showed: a process
appeared (fork), became a zombie (exit), vanished (reaped), changed parent (adopted); a
thread came or went; a connection was queued, accepted or closed; a descriptor opened or
closed; the system's listen-drop counters moved.
"""

from __future__ import annotations

from svcviz.observe.snapshot import Connection, Event, Fd, Process, Snapshot

TYPE_CHECKING = False  # as in snapshot.py: no `typing` at run time
if TYPE_CHECKING:
    from svcviz.observe.snapshot import EventKind


def diff(prev: Snapshot, next: Snapshot) -> list[Event]:
    events: list[Event] = []
    say = _Sayer(next.time, events)
    said_forks = _connections(prev, next, say)
    _processes(prev, next, say, said_forks)
    _threads_and_fds(prev, next, say)
    _drops(prev, next, say)
    return events


class _Sayer:
    def __init__(self, time: float, events: list[Event]) -> None:
        self.time = time
        self.events = events

    def __call__(self, kind: EventKind, text: str, pid: int | None) -> None:
        self.events.append(Event(self.time, kind, text, pid))


def _processes(prev: Snapshot, next: Snapshot, say: _Sayer, said_forks: set[int]) -> None:
    before = {p.pid: p for p in prev.processes}
    after = {p.pid: p for p in next.processes}
    for pid, now in after.items():
        was = before.get(pid)
        if was is None:
            if pid not in said_forks:
                say("fork", f"fork {pid} (parent {now.ppid})", pid)
            if now.zombie:
                say("exit", f"exit {pid}: zombie until its parent {now.ppid} waits", pid)
            continue
        if now.zombie and not was.zombie:
            say("exit", f"exit {pid}: zombie until its parent {now.ppid} waits", pid)
        if now.adopted and not was.adopted:
            say("adopted", f"adopted {pid}: parent {was.ppid} gone, now a child of {now.ppid}", pid)
    for pid, was in before.items():
        if pid in after:
            continue
        if not was.zombie:
            say("exit", f"exit {pid} (parent {was.ppid})", pid)
        say("reaped", f"{pid} reaped by {was.ppid}", pid)


def _threads_and_fds(prev: Snapshot, next: Snapshot, say: _Sayer) -> None:
    before = {p.pid: p for p in prev.processes}
    for now in next.processes:
        was = before.get(now.pid)
        if was is None or was is now or now.zombie:  # the observer reuses what did not change
            continue
        _threads(was, now, say)
        if was.readable and now.readable:
            _fds(was, now, say)


def _threads(was: Process, now: Process, say: _Sayer) -> None:
    if was.threads == now.threads:  # cheap: the observer reuses unchanged Thread objects
        return
    old = {t.tid for t in was.threads}
    new = {t.tid for t in now.threads}
    for tid in sorted(new - old):
        say("thread_start", f"thread {tid} started in {now.pid} ({len(new)} threads)", now.pid)
    for tid in sorted(old - new):
        say("thread_exit", f"thread {tid} ended in {now.pid} ({len(new)} threads)", now.pid)


def _describe(fd: Fd) -> str:
    if fd.kind == "listen":
        return f"listening {fd.local}" if fd.local else "listening"
    if fd.kind == "conn":
        return f"connection from {fd.peer}"
    return "socket" if fd.inode else "file"


def _fds(was: Process, now: Process, say: _Sayer) -> None:
    if was.fds == now.fds:
        return
    old = {fd.fd: fd for fd in was.fds}
    new = {fd.fd: fd for fd in now.fds}
    for number, fd in old.items():
        if number not in new or _identity(new[number]) != _identity(fd):
            say("fd_close", f"fd {number} closed in {now.pid} ({_describe(fd)})", now.pid)
    for number, fd in new.items():
        if number not in old or _identity(old[number]) != _identity(fd):
            say("fd_open", f"fd {number} opened in {now.pid} ({_describe(fd)})", now.pid)


def _identity(fd: Fd) -> tuple[object, ...]:
    """What makes two fds with one number the same open file (for sockets: the inode)."""
    return (fd.kind, fd.inode) if fd.inode else (fd.kind,)


def _connections(prev: Snapshot, next: Snapshot, say: _Sayer) -> set[int]:
    """The connections' news; the pids of new children an accept line already named."""
    if prev.connections == next.connections:
        return set()
    before = {(c.client, c.server): c for c in prev.connections}
    after = {(c.client, c.server): c for c in next.connections}
    processes = {p.pid: p for p in next.processes}
    old_pids = {p.pid for p in prev.processes}
    newly_queued = []
    said_forks: set[int] = set()
    for key, now in after.items():
        was = before.get(key)
        if now.state == "queued" and (was is None or was.state != "queued"):
            newly_queued.append(now.client)
        elif now.state == "accepted" and (was is None or was.state != "accepted"):
            say("accept", _accepted(now, processes, old_pids, next.root_pid, said_forks), now.pid)
        elif now.state == "closing" and was is not None and was.state != "closing":
            say("closed", f"closed {now.client} ({now.tcp_state})", now.pid or was.pid)
    if newly_queued:
        # One line per sample, with the one queue length the kernel had at that moment.
        queue = f"queue {next.queue_length} of backlog {next.listen[0].backlog}" if next.listen else "no listener"
        who = newly_queued[0] if len(newly_queued) == 1 else f"{len(newly_queued)} connections"
        say("queued", f"queued {who}: {queue}", None)
    for key, was in before.items():
        if key not in after and was.state in ("queued", "accepted"):
            say("closed", f"closed {was.client} (gone)", was.pid)
    return said_forks


def _accepted(
    conn: Connection, processes: dict[int, Process], old_pids: set[int], root: int | None, said_forks: set[int]
) -> str:
    """Who accepted, and who serves: a child forked since the last sample, holding a
    connection, was handed it by its parent (which accepted it), not accepting itself."""
    if conn.pid is None:
        return f"accepted {conn.client} (owner unknown)"
    holder = processes.get(conn.pid)
    if holder is not None and conn.pid not in old_pids and conn.pid != root and holder.ppid == root:
        said_forks.add(conn.pid)
        return f"accepted {conn.client} by {holder.ppid} fd {conn.fd}; child {conn.pid} serves it"
    return f"accepted {conn.client} by {conn.pid} fd {conn.fd}"


def _drops(prev: Snapshot, next: Snapshot, say: _Sayer) -> None:
    overflows = next.counters.listen_overflows - prev.counters.listen_overflows
    drops = next.counters.listen_drops - prev.counters.listen_drops
    if overflows > 0 or drops > 0:
        say(
            "dropped",
            f"dropped {max(overflows, drops)} SYN(s): a listen queue was full "
            f"(ListenOverflows +{overflows}, ListenDrops +{drops}, system-wide)",
            None,
        )
