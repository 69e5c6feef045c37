"""Small reusable looks at a LabUpdate: each returns a Look(holds, observed).

What they judge is the kernel's (the snapshot: processes, threads, fds, the accept queue,
connections and who holds them) or the clients' own (what a client received, whether it
saw EOF). Never what the server says about itself.
"""

from __future__ import annotations

from svcviz.clients import ClientView
from svcviz.lab import LabUpdate
from svcviz.observe.snapshot import Connection, Process
from svcviz.scenarios.base import Look, Probe
from svcviz.services import load_db, reply

REQUEST = "discard"  # what every client asks, and the right answer to it
ANSWER = reply(REQUEST.encode(), load_db())


def client(update: LabUpdate, client_id: int) -> ClientView:
    return next(c for c in update.clients if c.id == client_id)


def connection(update: LabUpdate, client_id: int) -> Connection | None:
    """The server side of a client's connection, as the kernel lists it."""
    port = client(update, client_id).local_port
    return next((c for c in update.snapshot.connections if c.client_port == port), None)


def children(update: LabUpdate) -> list[Process]:
    return [p for p in update.snapshot.processes if p.ppid == update.server_pid]


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "es" if word.endswith("s") else "s")


def ids(client_ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in client_ids)


def all_of(*probes: Probe) -> Probe:
    def look(update: LabUpdate) -> Look:
        looks = [probe(update) for probe in probes]
        return Look(all(look.holds for look in looks), "; ".join(look.observed for look in looks))

    return look


# -- clients ------------------------------------------------------------------------


def answered(*client_ids: int) -> Probe:
    """Each client got the right answer to what it asked."""

    def look(update: LabUpdate) -> Look:
        views = [client(update, i) for i in client_ids]
        done = [v.id for v in views if v.answered >= 1 and v.last_reply == ANSWER]
        return Look(len(done) == len(views), f"answered: {ids(done) or 'none'}")

    return look


def unanswered(*client_ids: int) -> Probe:
    """None of these clients has received a byte."""

    def look(update: LabUpdate) -> Look:
        got = [c.id for c in (client(update, i) for i in client_ids) if c.received]
        return Look(not got, f"received a reply: {ids(got)}" if got else f"{ids(list(client_ids))}: nothing received")

    return look


def client_state(state: str, *client_ids: int) -> Probe:
    def look(update: LabUpdate) -> Look:
        views = [client(update, i) for i in client_ids]
        text = ", ".join(
            f"#{v.id} {v.state}" + (f" ({v.error})" if v.error and v.state != state else "") for v in views
        )
        return Look(all(v.state == state for v in views), text)

    return look


def connected(*client_ids: int) -> Probe:
    """The clients' connect() completed (the kernel did the handshake for them)."""

    def look(update: LabUpdate) -> Look:
        views = [client(update, i) for i in client_ids]
        done = [v.id for v in views if v.connect_ms is not None and v.open]
        return Look(len(done) == len(views), f"connected: {ids(done) or 'none'}")

    return look


def no_eof(client_id: int) -> Probe:
    """The client is still open and has not seen the server close (no EOF, no reset)."""

    def look(update: LabUpdate) -> Look:
        view = client(update, client_id)
        ended = view.state in ("closed", "reset", "error") or not view.open
        return Look(not ended, f"#{client_id} {view.state}" + (", open" if view.open else ", ended"))

    return look


def threaded_or_closed(crowd: list[int]) -> Probe:
    """Every client either has a thread of its own (idle, the server's thread waiting for
    its first line) or was closed by the server."""

    def look(update: LabUpdate) -> Look:
        views = [c for c in update.clients if c.id in crowd]
        closed = sum(1 for v in views if v.state == "closed")
        idle = sum(1 for v in views if v.state == "idle")
        made = update.snapshot.thread_total - 1
        return Look(
            closed + idle == len(crowd) and made + closed == len(crowd),
            f"{plural(made, 'client thread')}, {closed} closed, {idle} idle",
        )

    return look


# -- connections --------------------------------------------------------------------


def conn_state(state: str, *client_ids: int) -> Probe:
    """The kernel's state of each client's connection: queued, accepted, syn_sent, ..."""

    def look(update: LabUpdate) -> Look:
        seen = {i: (c.state if (c := connection(update, i)) else "no connection") for i in client_ids}
        return Look(all(s == state for s in seen.values()), ", ".join(f"#{i} {s}" for i, s in seen.items()))

    return look


def accepted_by_distinct(*client_ids: int, among: str = "children") -> Probe:
    """Each connection accepted and held by a different process (or thread, among="threads")."""

    def look(update: LabUpdate) -> Look:
        conns = [connection(update, i) for i in client_ids]
        if any(c is None or c.state != "accepted" for c in conns):
            return Look(
                False,
                "not all accepted: "
                + ", ".join(f"#{i} {c.state if c else 'none'}" for i, c in zip(client_ids, conns, strict=True)),
            )
        owners = [c.tid if among == "threads" else c.pid for c in conns if c is not None]  # all there: above
        word = "thread" if among == "threads" else "pid"
        text = ", ".join(f"#{i} {word} {o}" for i, o in zip(client_ids, owners, strict=False))
        distinct = None not in owners and len(set(owners)) == len(owners)
        if among == "children":
            distinct = distinct and update.server_pid not in owners
        return Look(distinct, text)

    return look


def accepted_by_server(*client_ids: int) -> Probe:
    def look(update: LabUpdate) -> Look:
        conns = [connection(update, i) for i in client_ids]
        pairs = zip(client_ids, conns, strict=True)
        mine = [i for i, c in pairs if c and c.state == "accepted" and c.pid == update.server_pid]
        return Look(len(mine) == len(client_ids), f"accepted by pid {update.server_pid}: {ids(mine) or 'none'}")

    return look


# -- the listening socket ------------------------------------------------------------


def queue(length: int) -> Probe:
    """The accept queue's length: completed connections nobody accepted yet."""

    def look(update: LabUpdate) -> Look:
        found = update.snapshot.queue_length
        return Look(found == length, f"accept queue {found}")

    return look


def listening(yes: bool = True) -> Probe:
    def look(update: LabUpdate) -> Look:
        socks = update.snapshot.listen
        text = ", ".join(f"listening on {s.addr} (inode {s.inode})" for s in socks) or "no listening socket"
        return Look(bool(socks) == yes, text)

    return look


# -- processes and threads -----------------------------------------------------------


def processes(count: int) -> Probe:
    def look(update: LabUpdate) -> Look:
        procs = update.snapshot.processes
        states = "".join(p.state for p in procs)
        return Look(len(procs) == count, f"{plural(len(procs), 'process')} ({states})")

    return look


def newest_connection_forked() -> Probe:
    """A child holds the root's newest connection: the last accept() has been handed to fork()."""

    def look(update: LabUpdate) -> Look:
        root = update.snapshot.process(update.server_pid)
        conns = [f for f in (root.fds if root else ()) if f.kind == "conn"]
        if not conns:
            return Look(False, "the server holds no connection")
        newest = max(conns, key=lambda f: f.fd)
        kids = [
            p.pid
            for p in update.snapshot.processes
            if p.ppid == update.server_pid and newest.peer in {f.peer for f in p.fds}
        ]
        return Look(
            bool(kids),
            f"fd {newest.fd} also held by child {kids[0]}" if kids else f"no child holds fd {newest.fd} yet",
        )

    return look


def no_process_but(pids: set[int]) -> Probe:
    """No process in the tree that was not among pids: nothing was forked since."""

    def look(update: LabUpdate) -> Look:
        new = sorted(p.pid for p in update.snapshot.processes if p.pid not in pids)
        procs = plural(len(update.snapshot.processes), "process")
        return Look(not new, f"{procs}, new: pid {', '.join(map(str, new))}" if new else f"{procs}, none new")

    return look


def zombies(count: int) -> Probe:
    def look(update: LabUpdate) -> Look:
        found = [p.pid for p in update.snapshot.zombies if p.ppid == update.server_pid]
        return Look(
            len(found) == count, f"{len(found)} zombies" + (f" (pids {', '.join(map(str, found))})" if found else "")
        )

    return look


def threads(count: int) -> Probe:
    def look(update: LabUpdate) -> Look:
        found = update.snapshot.thread_total
        return Look(found == count, f"{plural(found, 'thread')} in {plural(len(update.snapshot.processes), 'process')}")

    return look


def server_alive() -> Probe:
    def look(update: LabUpdate) -> Look:
        root = update.snapshot.process(update.server_pid) if update.server_pid else None
        if root is not None and not root.zombie:
            return Look(True, f"server {update.server_pid} alive (state {root.state})")
        return Look(False, f"server {update.server_pid} {update.status}")

    return look


def server_exited() -> Probe:
    def look(update: LabUpdate) -> Look:
        return Look(update.status.startswith("exited"), f"server {update.status}")

    return look


def queue_at_least(length: int) -> Probe:
    def look(update: LabUpdate) -> Look:
        found = update.snapshot.queue_length
        return Look(found >= length, f"accept queue {found}")

    return look


def all_hold_the_listening_socket() -> Probe:
    """Every living process of the tree has the one listening socket in its fd table."""

    def look(update: LabUpdate) -> Look:
        inodes = {s.inode for s in update.snapshot.listen}
        living = [p for p in update.snapshot.processes if not p.zombie]
        holding = [p.pid for p in living if any(f.kind == "listen" and f.inode in inodes for f in p.fds)]
        listed = ", ".join(map(str, inodes)) or "-"
        text = f"{len(holding)} of {len(living)} processes hold listening socket inode {listed}"
        return Look(len(inodes) == 1 and len(holding) == len(living), text)

    return look


def server_holds(client_id: int) -> Probe:
    """The server's root process has the client's connection in its own fd table."""

    def look(update: LabUpdate) -> Look:
        port = client(update, client_id).local_port
        root = update.snapshot.process(update.server_pid)
        held = [f.fd for f in (root.fds if root else ()) if f.kind == "conn" and f.peer and f.peer.endswith(f":{port}")]
        return Look(
            bool(held),
            f"pid {update.server_pid} fd {held[0]} is #{client_id}'s connection"
            if held
            else f"pid {update.server_pid} does not hold #{client_id}'s connection",
        )

    return look


def fd_table_full(limit: int) -> Probe:
    """The server's root has as many fds open as RLIMIT_NOFILE allows."""

    def look(update: LabUpdate) -> Look:
        root = update.snapshot.process(update.server_pid)
        count = len(root.fds) if root else 0
        return Look(count >= limit, f"{count} of {limit} fds open")

    return look


def open_file_limit(pid: int) -> int:
    """The soft RLIMIT_NOFILE of a process, as the kernel shows it in /proc/PID/limits."""
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    return int(line.split()[3])
