"""Half-open clients, inferred: a client connected on its side while the server's side has
no connection for it (none, or one still in SYN_RECV). With SYN cookies and a full accept
queue the kernel completes the client's handshake, then drops its final ACK: only the
server's side, in the snapshot, tells."""

from __future__ import annotations

from svcviz.clients import Fleet
from svcviz.clients.view import CONNECTED
from svcviz.observe.snapshot import Snapshot

# A client connected this recently may not be in the sample yet: it is not judged half-open.
SETTLED_AFTER = 0.2


class HalfOpenClients:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def check(self, snapshot: Snapshot) -> None:
        """Tell the fleet which of its clients are half-open now (and so which are not)."""
        if not self.fleet.alive():
            return
        # deferred: SYN_RECV too, held back by TCP_DEFER_ACCEPT until the first bytes come
        known = {c.client_port for c in snapshot.connections if c.state not in ("syn_recv", "deferred", "syn_sent")}
        settled = snapshot.time - SETTLED_AFTER
        half_open = {
            client.local_port
            for client in self.fleet.clients()
            if snapshot.listen
            and client.open
            and client.local_port
            and client.local_port not in known
            and (client.state in CONNECTED or client.state == "half-open")
            and client.started + (client.connect_ms or 0) / 1000 < settled
        }
        self.fleet.mark_half_open(half_open)
