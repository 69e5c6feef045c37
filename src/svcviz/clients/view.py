"""What a simulated client looks like from outside: the dashboard draws these."""

from __future__ import annotations

from typing import NamedTuple

KINDS = ("interactive", "scripted", "silent", "half-close")
CONNECTED = ("waiting", "idle", "served")  # what a client that believes it is connected can be
HALF_OPEN = "the server dropped its final ACK: accept queue full"

# Each state and what it means (for a help screen). A state is what the client itself
# has seen; the kernel's side (queued, SYN_SENT, which process holds the connection) is
# the observer's, matched by local_port.
CLIENT_STATES = {
    "connecting": "connect() in progress: SYN sent, no answer yet",
    "waiting": "connected, a request not answered yet (often still in the accept queue)",
    "idle": "connected, nothing asked (an open telnet nobody types into)",
    "served": "connected, every request answered",
    "half-open": f"connected for the client, unknown to the server ({HALF_OPEN})",
    "refused": "connect() refused (ECONNREFUSED): nobody listening",
    "timed_out": "connect() not done within the connect timeout (SYN dropped)",
    "closed": "the server closed the connection (EOF)",
    "hung": "no EOF long after the process that served it exited",
    "reset": "the connection was reset (ECONNRESET)",
    "error": "another socket error",
    "quit": "the client closed the connection itself",
}


class ClientView(NamedTuple):
    id: int
    kind: str
    state: str
    open: bool
    local_port: int | None
    connect_ms: float | None
    sent: int
    received: int
    last_reply: str | None
    error: str | None
    started: float
    asked: int = 0
    answered: int = 0
