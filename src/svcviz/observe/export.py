"""A Snapshot as plain JSON-ready data: the stable format of `svcviz watch --once --json`.

docs/watch-json.md documents every key; add keys, never rename or remove them.
"""

from __future__ import annotations

from svcviz.observe.architecture import judge
from svcviz.observe.snapshot import CONN_STATE_WORDS, Connection, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.observe.waits import wait_text


def to_json(snapshot: Snapshot) -> dict[str, object]:
    architecture = judge(snapshot)
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
        "architecture": {"name": architecture.name, "evidence": list(architecture.evidence)},
        "reuseport": architecture.reuseport,
        "netns": snapshot.netns,
        "netns_label": snapshot.netns_label,
        "notes": list(snapshot.notes),
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
        "holders": list(sock.holders),
        "pollers": list(sock.pollers),
        "uid": sock.uid,
    }


def _process(process: Process) -> dict[str, object]:
    return {
        "pid": process.pid,
        "ppid": process.ppid,
        "name": process.name,
        "state": process.state,
        "threads": process.thread_count,
        "thread_list": [_thread(t, process) for t in process.threads],
        "rss": process.rss,
        "fds": [_fd(fd) for fd in process.fds],
        "readable": process.readable,
        "adopted": process.adopted,
        "cmdline": process.cmdline,
        "title": process.title,
        "user": process.user,
    }


def _thread(thread: Thread, process: Process) -> dict[str, object]:
    return {
        "tid": thread.tid,
        "state": thread.state,
        "name": thread.name,
        "syscall": thread.syscall,
        "syscall_fd": thread.syscall_fd,
        "syscall_nr": thread.syscall_nr,
        "syscall_readable": thread.syscall_readable,
        "wait": wait_text(thread, process),
    }


def _fd(fd: Fd) -> dict[str, object]:
    return {
        "fd": fd.fd,
        "kind": fd.kind,
        "peer": fd.peer,
        "local": fd.local,
        "inode": fd.inode,
        "tcp_state": fd.tcp_state,
        "link": fd.link,
    }


def _connection(conn: Connection) -> dict[str, object]:
    return {
        "client": conn.client,
        "server": conn.server,
        "state": conn.state,
        "label": CONN_STATE_WORDS[conn.state],
        "tcp_state": conn.tcp_state,
        "pid": conn.pid,
        "fd": conn.fd,
        "tid": conn.tid,
        "owner": "unknown" if conn.owner_unknown else ("none" if conn.pid is None else "known"),
    }
