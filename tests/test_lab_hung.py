"""Which clients hang when a holder of their connection exits (lab/hung.py)."""

from __future__ import annotations

from svcviz.lab.hung import HungClients
from svcviz.observe.snapshot import Fd, Process, Snapshot

ROOT, CHILD, SVCVIZ, PORT = 100, 101, 1, 40000


class Fleet:
    """Records what HungClients tells the fleet."""

    def __init__(self) -> None:
        self.gone: list[int] = []

    def alive(self) -> int:
        return 1

    def mark_server_gone(self, port: int) -> None:
        self.gone.append(port)


def holder(pid: int, ppid: int) -> Process:
    return Process(pid, ppid, "svcviz", "S", fds=(Fd(4, "conn", peer=f"127.0.0.1:{PORT}"),))


def snap(*processes: Process) -> Snapshot:
    return Snapshot(time=0.0, root_pid=ROOT, processes=processes)


def test_leaked_fd_child_exit_hangs_the_client():
    fleet = Fleet()
    hung = HungClients(fleet)
    hung.check(snap(holder(ROOT, SVCVIZ), holder(CHILD, ROOT)))
    hung.check(snap(holder(ROOT, SVCVIZ)))  # the child served and exited; the parent keeps the fd
    assert fleet.gone == [PORT]


def test_killed_parent_whose_child_still_serves_is_no_hang():
    fleet = Fleet()
    hung = HungClients(fleet)
    hung.check(snap(holder(ROOT, SVCVIZ), holder(CHILD, ROOT)))
    hung.check(snap(holder(CHILD, SVCVIZ)))  # `k`: the parent died; the child, adopted, serves on
    hung.check(snap(holder(CHILD, SVCVIZ)))
    assert fleet.gone == []
