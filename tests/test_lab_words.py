"""What only the lab knows goes into the events' words (lab.Lab._as_the_kernel_did)."""

from __future__ import annotations

from svcviz.lab import Lab
from svcviz.observe.snapshot import Event
from svcviz.servers.config import ServerConfig


def test_with_sigchld_ignored_a_vanished_child_was_discarded_by_the_kernel_not_reaped():
    lab = Lab(ServerConfig("fork", port=0, sigchld="ignore"))
    lab.server.pid = 100  # what the supervisor knows once it started the server
    event = Event(1.0, "reaped", "101 reaped by 100", 101)
    assert lab._as_the_kernel_did(event).text == "101 discarded by the kernel (SIGCHLD ignored): nobody waited"
    lab.config = lab.config._replace(sigchld="default")
    assert lab._as_the_kernel_did(event).text == "101 reaped by 100"
