"""A Snapshot as plain JSON-ready data: the stable format of `svcviz watch --once --json`.

docs/watch-json.md documents every key; add keys, never rename or remove them.
"""

from __future__ import annotations

from svcviz.observe.snapshot import Connection, Fd, ListenSocket, Process, Snapshot


def to_json(snapshot: Snapshot) -> dict[str, object]:
    return {
        "time": snapshot.time,
        "root_pid": snapshot.root_pid,
        "listen": [_listen(sock) for sock in snapshot.listen],
        "processes": [_process(process) for process in snapshot.processes],
        "connections": [_connection(conn) for conn in snapshot.connections],
        "counters": {
            "listen_overflows": snapshot.counters.listen_overflows,
            "listen_drops": snapshot.counters.listen_drops,
            "overflows_delta": snapshot.counters.overflows_delta,
            "drops_delta": snapshot.counters.drops_delta,
        },
        "unreadable": list(snapshot.unreadable),
    }


def _listen(sock: ListenSocket) -> dict[str, object]:
    return {
        "addr": sock.addr,
        "port": sock.port,
        "queue": sock.queue,
        "backlog": sock.backlog,
        "pid": sock.pid,
        "fd": sock.fd,
        "inode": sock.inode,
    }


def _process(process: Process) -> dict[str, object]:
    return {
        "pid": process.pid,
        "ppid": process.ppid,
        "name": process.name,
        "state": process.state,
        "threads": process.thread_count,
        "thread_list": [{"tid": t.tid, "state": t.state, "name": t.name} for t in process.threads],
        "rss": process.rss,
        "fds": [_fd(fd) for fd in process.fds],
        "readable": process.readable,
        "adopted": process.adopted,
        "cmdline": process.cmdline,
    }


def _fd(fd: Fd) -> dict[str, object]:
    return {
        "fd": fd.fd,
        "kind": fd.kind,
        "peer": fd.peer,
        "local": fd.local,
        "inode": fd.inode,
        "tcp_state": fd.tcp_state,
    }


def _connection(conn: Connection) -> dict[str, object]:
    return {
        "client": conn.client,
        "server": conn.server,
        "state": conn.state,
        "tcp_state": conn.tcp_state,
        "pid": conn.pid,
        "fd": conn.fd,
        "tid": conn.tid,
    }
