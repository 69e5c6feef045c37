"""Simulated telnet clients (the fleet the dashboard drives) and `svcviz blast`."""

from svcviz.clients.blast import blast_main
from svcviz.clients.fleet import Fleet, FleetError, FleetFull
from svcviz.clients.view import CLIENT_STATES, KINDS, ClientView

__all__ = ["CLIENT_STATES", "KINDS", "ClientView", "Fleet", "FleetError", "FleetFull", "blast_main"]
