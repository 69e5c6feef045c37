"""Hung clients, inferred: when the process that served a client is gone but the connection
lives on in another (the fork server that leaks its fds), no EOF comes, and the client hangs.

The process that serves a connection is the newest of its holders: a fork server's child,
not the parent that accepted it and kept the fd. So the parent dying (`k`) while its child
still serves is no hang: only a holder none of whose own children holds the connection
counts when it goes."""

from __future__ import annotations

from svcviz.clients import Fleet
from svcviz.observe.snapshot import Snapshot


class HungClients:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._holders: dict[int, set[int]] = {}  # client port -> pids that held its connection
        self._parents: dict[int, int] = {}  # holder pid -> its parent when first seen (before any adoption)
        self._marked_gone: set[int] = set()

    def forget(self) -> None:
        """A new server: nothing seen before holds its connections."""
        self._holders, self._parents, self._marked_gone = {}, {}, set()

    def check(self, snapshot: Snapshot) -> None:
        """Tell the fleet of each client whose serving process has died since last seen."""
        if not self.fleet.alive():  # watching a busy server with no clients of ours: nothing to do
            self.forget()
            return
        living = {p.pid for p in snapshot.processes if not p.zombie}
        holders_now: dict[int, set[int]] = {}
        for process in snapshot.processes:
            if process.zombie:
                continue
            for fd in process.fds:
                if fd.kind == "conn" and fd.peer:
                    holders_now.setdefault(int(fd.peer.rsplit(":", 1)[1]), set()).add(process.pid)
                    self._parents.setdefault(process.pid, process.ppid)
        # Only connections alive now are remembered: a long churn must not grow these.
        self._holders = {port: self._holders.get(port, set()) | holders for port, holders in holders_now.items()}
        self._marked_gone &= holders_now.keys()
        held = set().union(*self._holders.values())
        self._parents = {pid: ppid for pid, ppid in self._parents.items() if pid in held}
        for port, seen in self._holders.items():
            servers_gone = {pid for pid in seen - living if not self._hands_on(pid, seen & living)}
            if port not in self._marked_gone and servers_gone:
                self._marked_gone.add(port)
                self.fleet.mark_server_gone(port)

    def _hands_on(self, pid: int, living_holders: set[int]) -> bool:
        """pid only handed the connection on: a child of its still holds and serves it."""
        return any(self._parents.get(holder) == pid for holder in living_holders)
