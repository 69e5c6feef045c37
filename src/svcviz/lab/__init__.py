"""The lab: a server model, its clients and the observer, run together, safely.

The dashboard and the scenarios are both written on this alone::

    lab = Lab(ServerConfig("fork"))
    await lab.start()
    await lab.add_clients(3)
    async for update in lab.updates():   # LabUpdate: snapshot, events, clients, ...
        ...
    await lab.stop()

Each of the lab's jobs is one module; lab.Lab composes them:

    supervisor  the server process: its own session, dying with svcviz, stopped with all it forked
    orphans     what the server orphans is adopted by svcviz (a child subreaper) and reaped here
    caps        the last cap hit, and the lab's own check that stops a tree past its cap
    hung        clients whose server process is gone while another still holds the connection
    halfopen    clients connected on their side that the server's side has no connection for
    shape       LabLike: the part of Lab the dashboard drives, which a recording or a replay also offers
"""

from svcviz.lab.errors import LabError
from svcviz.lab.lab import Lab, LabUpdate
from svcviz.lab.shape import LabLike
from svcviz.lab.supervisor import session_pids

__all__ = ["Lab", "LabError", "LabLike", "LabUpdate", "session_pids"]
