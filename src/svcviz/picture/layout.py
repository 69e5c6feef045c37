"""The picture's layout: who is drawn where, and which lines join what, on plain data.

The lecture draws a server as clients on the left, the listening socket in the middle (a
stake in the ground with its queue of waiting connections) and each process on the right
as a box with its fd table, a line from each client to the fd that holds its connection.
layout() places those objects on a grid of character cells; draw.py paints the grid for
the terminal and for SVG, so both show the same picture. Nothing here reads the kernel or
imports textual.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from svcviz.clients.view import ClientView
from svcviz.observe.snapshot import Connection, Process, Snapshot

CLIENT_W = 16  # a client chip: "#12 served"
GAP_A = 5  # between the chips and the listen box: lanes of lines bending to a queue slot
LISTEN_W = 20
PROC_W = 34
MIN_W, MIN_H = 72, 12
TOP = 1  # row 0 holds the column titles
THREAD_MODELS = ("thread", "threadpool")
CHILD_ROLE = {"prefork": "worker", "fork": "child"}
LIVE_ORDER = ("waiting", "connecting", "served", "idle", "hung")
MAX_GROUP_WIRES = 12


@dataclass(frozen=True)
class Chip:
    """A client (or a group of clients of one state) as a small labelled box on the left."""

    key: str  # "client:3", "peer:40000", "group:waiting"
    label: str  # "#3 waiting", ":40000", "×40 waiting"
    state: str  # a client state: the colour, as in the clients panel
    y: int
    count: int = 1


@dataclass(frozen=True)
class Slot:
    y: int
    label: str  # "1 #3", "2 ·", "… +1017 slots"
    holder: str | None = None  # the chip key of the connection waiting in it


@dataclass(frozen=True)
class ListenBox:
    key: str  # "listen:127.0.0.1:6168"
    title: str  # ":6168 fd 3"
    x: int
    y: int
    h: int
    queued: int
    capacity: int  # backlog + 1
    slots: tuple[Slot, ...]

    @property
    def full(self) -> bool:
        return self.queued >= self.capacity


@dataclass(frozen=True)
class Row:
    """One row of a process box's fd table."""

    y: int
    text: str  # "3 listen", "4 ← #1", "… +12 connections"
    kind: str  # "listen", "conn", "closing", "threads", "more", "note"


@dataclass(frozen=True)
class ProcBox:
    key: str  # "proc:4242", "group:children:S:1"
    title: str  # "4242 parent", "×200 children"
    state: str  # "running", "sleeping", "zombie", ...
    x: int
    y: int
    w: int
    h: int
    rows: tuple[Row, ...]
    zombie: bool = False
    adopted: bool = False
    count: int = 1  # processes drawn by this box
    pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Wire:
    """A line: a client to the fd or queue slot holding its connection, or the listening
    socket to each fd that holds it."""

    src: str  # chip key, or a listen box key
    dst: str  # a process box or listen box key
    points: tuple[tuple[int, int], ...]  # an orthogonal polyline, source edge to target edge
    kind: str  # "conn", "queued", "knock", "listen"
    state: str  # the colour: the client's state, "listen" for the listening socket

    @property
    def end(self) -> tuple[int, int]:
        return self.points[-1]


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    off: str | None = None  # why nothing is drawn (too small)
    chips: tuple[Chip, ...] = ()
    listens: tuple[ListenBox, ...] = ()
    boxes: tuple[ProcBox, ...] = ()
    wires: tuple[Wire, ...] = ()
    titles: tuple[tuple[int, str], ...] = ()  # (x, text) on row 0
    notes: tuple[tuple[int, int, str], ...] = ()  # (x, y, text): "no listening socket", "… 3 more"

    def chip(self, key: str) -> Chip | None:
        return next((c for c in self.chips if c.key == key), None)

    def box(self, key: str) -> ProcBox | None:
        return next((b for b in self.boxes if b.key == key), None)

    def joined(self, src: str) -> set[str]:
        """The keys a chip or listen box has lines to."""
        return {w.dst for w in self.wires if w.src == src}


# A client's port, as the layout keys connections by it: None for an address that shows none.
Port = int | None
# Where a line ends: (the key of a box, the row y in it).
Target = tuple[str, int]
# A row of a process box's fd table before it is placed: (text, kind, the client port of
# its connection, or of a group box's connections).
RowSpec = tuple[str, str, Port | tuple[Port, ...]]


class _Item(NamedTuple):
    """A process box before it is placed: one process, or a group of them."""

    key: str
    title: str
    pids: tuple[int, ...]
    rows: list[RowSpec]
    flags: tuple[bool, bool, str]  # zombie, adopted, the state word


@dataclass(slots=True)
class _Party:
    """A client as the layout sees it: its connection's place in the kernel."""

    key: str
    label: str
    state: str
    order: tuple[Port | str, ...]  # (0, id) our client, (1, port) a peer; a group's state's place
    count: int = 1
    knocking: bool = False
    half_open: bool = False
    ports: list[Port] = field(default_factory=list)


def port_of(address: str | None) -> int | None:
    try:
        return int(address.rsplit(":", 1)[1]) if address else None
    except (IndexError, ValueError):
        return None


def tree_order(snapshot: Snapshot) -> list[Process]:
    """Depth first from the root, so a child's box comes right after its parent's; orphans
    (their parent gone) last."""
    pids = {p.pid for p in snapshot.processes}
    by_parent: dict[int, list[Process]] = {}
    for process in snapshot.processes:
        by_parent.setdefault(process.ppid, []).append(process)
    ordered: list[Process] = []
    stack = sorted(
        (p for p in snapshot.processes if p.pid == snapshot.root_pid or p.ppid not in pids),
        key=lambda p: (p.pid != snapshot.root_pid, p.pid),
        reverse=True,
    )
    while stack:
        process = stack.pop()
        ordered.append(process)
        stack.extend(sorted(by_parent.get(process.pid, ()), key=lambda p: p.pid, reverse=True))
    return ordered


def drawn_key(snapshot: Snapshot, clients: tuple[ClientView, ...], model: str) -> tuple[object, ...]:
    """What the picture draws of a sample: equal keys, the same picture. A process's
    running/sleeping flicker is left out (the picture does not draw it: a busy parent
    flips between R and S every sample, and would have the picture laid out every time)."""
    processes = tuple(
        (p.pid, p.ppid, p.zombie, p.adopted, p.readable, p.fds, len(p.threads)) for p in snapshot.processes
    )
    return (snapshot.root_pid, snapshot.listen, processes, snapshot.connections, clients, model)


def layout(snapshot: Snapshot, clients: Iterable[ClientView], width: int, height: int, model: str = "") -> Picture:
    if width < MIN_W or height < MIN_H:
        return Picture(
            width,
            height,
            off=f"the picture needs {MIN_W}x{MIN_H} cells and has {width}x{height}: make the window larger",
        )
    clients = tuple(clients)
    lx = CLIENT_W + GAP_A
    px = lx + LISTEN_W + max(6, min(18, width - lx - LISTEN_W - PROC_W))
    pw = min(PROC_W, width - px)
    labels: dict[Port, str] = {c.local_port: f"#{c.id}" for c in clients if c.local_port}
    threaded = model in THREAD_MODELS or model == "watch"
    boxes, fd_rows, listen_rows, more = _process_boxes(snapshot, labels, threaded, model, px, pw, height)
    conns = {port_of(conn.client): conn for conn in snapshot.connections}  # by the client's port
    listens, slot_rows = _listen_boxes(snapshot, conns, labels, lx, height)
    parties, grouped = _parties(conns, clients, height - TOP)
    chips, placed = _place_chips(parties, grouped, height, fd_rows, slot_rows, listens, listen_rows)
    wires = _wires(chips, placed, fd_rows, slot_rows, listens, listen_rows, lx, px)
    notes: list[tuple[int, int, str]] = []
    if more:
        notes.append((px, height - 1, more))
    if not snapshot.listen:
        notes.append((lx, TOP, "no listening"))
        notes.append((lx, TOP + 1, "socket: refused"))
    titles = ((0, "clients"), (lx, "listening socket"), (px, "processes and their fds"))
    return Picture(width, height, None, tuple(chips), tuple(listens), tuple(boxes), tuple(wires), titles, tuple(notes))


# -- processes -----------------------------------------------------------------------


def _role(process: Process, snapshot: Snapshot, model: str) -> str:
    if process.pid == snapshot.root_pid:
        return "parent" if model in CHILD_ROLE else "server"
    if process.zombie:
        return "zombie"
    return CHILD_ROLE.get(model, "child")


def _rows_of(
    process: Process,
    labels: dict[Port, str],
    threaded: bool,
    tids: dict[tuple[int | None, int | None], int] | None = None,
) -> list[RowSpec]:
    """(text, kind, client port) per row of a process's fd table."""
    if process.zombie:
        return [("", "note", None)]
    if not process.readable:
        return [("fds not readable", "note", None)]
    rows: list[RowSpec] = []
    for fd in process.fds:
        if fd.kind == "listen":
            rows.append((f"{fd.fd} listen", "listen", None))
        elif fd.kind == "conn":
            port = port_of(fd.peer)
            closing = fd.tcp_state == "CLOSE_WAIT"
            text = f"{fd.fd} ← {labels.get(port, f':{port}')}" + (" closing" if closing else "")
            tid = (tids or {}).get((process.pid, fd.fd))
            if threaded and tid is not None and tid != process.pid:
                text += f"  thread {tid}"
            rows.append((text, "closing" if closing else "conn", port))
    if threaded and process.thread_count > 1:
        rows.append((f"{process.thread_count} threads share it all", "threads", None))
    return rows or [("no sockets", "note", None)]


def _process_boxes(
    snapshot: Snapshot, labels: dict[Port, str], threaded: bool, model: str, px: int, pw: int, height: int
) -> tuple[list[ProcBox], dict[Port, list[Target]], list[Target], str | None]:
    """The boxes, one per process while they fit; past that, processes of one role, state
    and number of connections share a box (×200 children, 1 connection each)."""
    budget = height - TOP
    ordered = tree_order(snapshot)
    # A box is three rows at least: past budget/3 processes, straight to grouping.
    items = [_single(p, snapshot, labels, threaded, model) for p in ordered] if 3 * len(ordered) <= budget else None
    if items is None or sum(len(rows) + 2 for _, _, _, rows, _ in items) > budget:
        items = _grouped(ordered, snapshot, labels, threaded, model)
    heights = [len(rows) + 2 for _, _, _, rows, _ in items]
    # Still too tall: the biggest fd tables give up rows first ("… +K connections").
    while sum(heights) > budget and max(heights, default=0) > 4:
        i = heights.index(max(heights))
        heights[i] -= 1
    shown = len(items)
    while shown and sum(heights[:shown]) > budget - (1 if shown < len(items) else 0):
        shown -= 1
    boxes: list[ProcBox] = []
    fd_rows: dict[Port, list[Target]] = {}
    listen_rows: list[Target] = []
    y = TOP
    for (key, title, procs, rows, flags), h in zip(items[:shown], heights[:shown], strict=True):
        keep = rows if len(rows) <= h - 2 else rows[: h - 3]
        hidden = rows[len(keep) :]
        placed: list[Row] = []
        for i, (text, kind, port) in enumerate(keep):
            ry = y + 1 + i
            placed.append(Row(ry, text, kind))
            if kind == "listen":
                listen_rows.append((key, ry))
            ports = port if isinstance(port, tuple) else (port,)
            for p in ports:
                if p is not None:
                    fd_rows.setdefault(p, []).append((key, ry))
        if hidden:
            ry = y + h - 2
            placed.append(Row(ry, f"… +{len(hidden)} more", "more"))
            for _, _, port in hidden:
                for p in port if isinstance(port, tuple) else (port,):
                    if p is not None:
                        fd_rows.setdefault(p, []).append((key, ry))
        zombie, adopted, state = flags
        boxes.append(ProcBox(key, title, state, px, y, pw, h, tuple(placed), zombie, adopted, len(procs), procs))
        y += h
    more = f"… {sum(len(it[2]) for it in items[shown:])} more processes" if shown < len(items) else None
    return boxes, fd_rows, listen_rows, more


STATE_WORDS = {"R": "running", "S": "sleeping", "D": "disk wait", "Z": "zombie", "T": "stopped", "I": "idle"}


def _single(process: Process, snapshot: Snapshot, labels: dict[Port, str], threaded: bool, model: str) -> _Item:
    role = _role(process, snapshot, model)
    state = STATE_WORDS.get(process.state, process.state)
    title = f"{process.pid} zombie" if process.zombie else f"{process.pid} {role}"
    if process.adopted:
        title += " orphan, adopted"
    if threaded and not process.zombie and process.thread_count > 1:
        title += f", {process.thread_count} threads"
    tids = {(c.pid, c.fd): c.tid for c in snapshot.connections if c.tid is not None} if threaded else None
    rows = _rows_of(process, labels, threaded, tids)
    return _Item(f"proc:{process.pid}", title, (process.pid,), rows, (process.zombie, process.adopted, state))


def _grouped(
    ordered: list[Process], snapshot: Snapshot, labels: dict[Port, str], threaded: bool, model: str
) -> list[_Item]:
    items: list[_Item] = []
    groups: dict[tuple[str, str, bool, int, int], list[tuple[Process, tuple[Port, ...]]]] = {}
    for process in ordered:
        if process.pid == snapshot.root_pid:
            items.append(_single(process, snapshot, labels, threaded, model))
            continue
        conns = tuple(port_of(fd.peer) for fd in process.fds if fd.kind == "conn")
        listens = sum(fd.kind == "listen" for fd in process.fds)
        # Not by R/S: that flickers every sample; the role says zombie.
        sig = (_role(process, snapshot, model), "Z" if process.zombie else "S", process.adopted, len(conns), listens)
        groups.setdefault(sig, []).append((process, conns))
    for (role, state, adopted, n_conns, listens), members in groups.items():
        if len(members) == 1:
            items.append(_single(members[0][0], snapshot, labels, threaded, model))
            continue
        plural = "zombies" if role == "zombie" else f"{role}s" if role != "child" else "children"
        title = f"×{len(members)} {plural}" + (", adopted" if adopted else "")
        rows: list[RowSpec] = []
        if role == "zombie":
            rows.append(("", "note", None))
        if listens:
            rows.append((f"{3 if listens == 1 else '3…'} listen, each", "listen", None))
        if n_conns:
            ports = tuple(p for _, conns in members for p in conns)
            rows.append((f"{n_conns} connection{'s' if n_conns > 1 else ''} each", "conn", ports))
        rows = rows or [("no sockets", "note", None)]
        key = f"group:{role}:{state}:{int(adopted)}:{n_conns}:{listens}"
        pids = tuple(p.pid for p, _ in members)
        items.append(_Item(key, title, pids, rows, (role == "zombie", adopted, STATE_WORDS.get(state, state))))
    return items


# -- the listening sockets -----------------------------------------------------------


def _listen_boxes(
    snapshot: Snapshot, conns: dict[Port, Connection], labels: dict[Port, str], lx: int, height: int
) -> tuple[list[ListenBox], dict[Port, Target]]:
    """Each listening socket with its accept queue as backlog+1 slots, filled in order."""
    boxes: list[ListenBox] = []
    slot_rows: dict[Port, Target] = {}
    if not snapshot.listen:
        return boxes, slot_rows
    queued: dict[str, list[Port]] = {}
    which: dict[str, str] = {}
    for port, conn in conns.items():
        if conn.state == "queued":
            addr = which.get(conn.server) or which.setdefault(conn.server, _listen_for(snapshot, conn.server))
            queued.setdefault(addr, []).append(port)
    ours = {port: int(label[1:]) for port, label in labels.items() if port in conns}
    # At most two thirds of the height: the clients served by processes sit below the
    # listen boxes, so their lines run clear of them.
    per_box = max(3, (height - TOP) * 2 // 3 // len(snapshot.listen) - 2)
    y = TOP
    for sock in snapshot.listen:
        key = f"listen:{sock.addr}"
        waiting = sorted(queued.get(sock.addr, []), key=lambda p: (p not in ours, ours.get(p, 0), p))
        capacity = sock.backlog + 1
        count = max(sock.queue, len(waiting))
        n = min(capacity, per_box)
        if y + n + 2 > height:
            break
        slots: list[Slot] = []
        for i in range(n):
            sy = y + 1 + i
            if i == n - 1 and capacity > n:
                rest = count - i
                text = f"… +{rest} waiting" if rest > 0 else f"… {capacity} slots"
                holders = waiting[i:]
                slots.append(Slot(sy, text, f"ports:{len(holders)}" if holders else None))
                for port in holders:
                    slot_rows[port] = (key, sy)
                continue
            if i < len(waiting):
                port = waiting[i]
                slots.append(Slot(sy, f"{i + 1} {labels.get(port, f':{port}')}", str(port)))
                slot_rows[port] = (key, sy)
            elif i < count:
                slots.append(Slot(sy, f"{i + 1} (waiting)", "?"))
            else:
                slots.append(Slot(sy, f"{i + 1} ·"))
        fd = f" fd {sock.fd}" if sock.fd is not None else ""
        boxes.append(ListenBox(key, f":{sock.port}{fd}", lx, y, n + 2, count, capacity, tuple(slots)))
        y += n + 2
    return boxes, slot_rows


def _listen_for(snapshot: Snapshot, server: str) -> str:
    for sock in snapshot.listen:
        if sock.addr == server:
            return sock.addr
    port = port_of(server)
    return next((s.addr for s in snapshot.listen if s.port == port), snapshot.listen[0].addr)


# -- the clients ---------------------------------------------------------------------


PEER_STATES = {"queued": "waiting", "accepted": "served", "closing": "closed"}
KNOCKS = ("syn_sent", "syn_recv")


def _parties(conns: dict[Port, Connection], clients: tuple[ClientView, ...], rows: int) -> tuple[list[_Party], bool]:
    """Our clients, then every other peer the kernel shows (a watched server's clients);
    past what fits in rows, one party per state (grouped: True)."""
    ours = {c.local_port for c in clients if c.local_port}
    peers = [port for port in conns if port not in ours]
    if len(clients) + len(peers) > rows:
        return _group_by_state(clients, peers, conns), True
    parties: list[_Party] = []
    for client in clients:
        party = _Party(f"client:{client.id}", f"#{client.id} {client.state}", client.state, (0, client.id))
        conn = conns.get(client.local_port) if client.open and client.local_port else None
        if conn is not None:
            _attach(party, conn, client.local_port)
        parties.append(party)
    for port in peers:
        conn = conns[port]
        party = _Party(f"peer:{port}", f":{port}", PEER_STATES.get(conn.state, "connecting"), (1, port))
        _attach(party, conn, port)
        parties.append(party)
    return parties, False


def _attach(party: _Party, conn: Connection, port: Port) -> None:
    party.ports.append(port)
    if conn.state == "syn_sent":
        party.knocking = True
        party.label = party.label.split(" ")[0] + " SYN_SENT"
    elif conn.state == "syn_recv":
        party.half_open = True
        party.label = party.label.split(" ")[0] + " half-open"


def _rank(
    party: _Party, fd_rows: dict[Port, list[Target]], slot_rows: dict[Port, Target]
) -> tuple[int, int, tuple[Port | str, ...]]:
    port = party.ports[0] if party.ports else None
    if port in slot_rows:
        return (0, slot_rows[port][1], party.order)
    if party.knocking or party.half_open:
        return (1, 0, party.order)
    if port in fd_rows:
        return (2, fd_rows[port][0][1], party.order)
    return (3, 0, party.order)


def _place_chips(
    parties: list[_Party],
    grouped: bool,
    height: int,
    fd_rows: dict[Port, list[Target]],
    slot_rows: dict[Port, Target],
    listens: list[ListenBox],
    listen_rows: list[Target],
) -> tuple[list[Chip], dict[str, _Party]]:
    """One chip a client, each next to what holds its connection when it can be; past what
    fits, one chip per state (×40 waiting)."""
    if not grouped:
        parties = sorted(parties, key=lambda p: _rank(p, fd_rows, slot_rows))
    chips: list[Chip] = []
    placed: dict[str, _Party] = {}
    y = TOP
    # A chip beside another fd's row would run its line along that row's: kept off them.
    taken = {ty for targets in fd_rows.values() for _, ty in targets} | {ty for _, ty in listen_rows}
    below_listen = max((b.y + b.h for b in listens), default=TOP)
    for i, party in enumerate(parties):
        left = len(parties) - i  # chips still to place, this one included
        rank = _rank(party, fd_rows, slot_rows)
        want = y
        if rank[0] == 0:
            want = rank[1]
        elif rank[0] == 2:
            # Next to its fd when that is lower down; below the listen box (its line then
            # runs clear of it) when there is room for the rest.
            want = max(y, min(rank[1], height - left))
            if height - want >= left and want < below_listen <= height - left:
                want = below_listen
        y = max(y, min(want, height - left))
        own = {ty for port in party.ports for _, ty in fd_rows.get(port, ())}
        while rank[0] == 2 and y in taken and y not in own and y < height - left:
            y += 1
        chips.append(Chip(party.key, party.label, party.state, y, party.count))
        placed[party.key] = party
        # A free row between chips while the rest still fit so: one box is not read as two.
        y += 2 if rank[0] != 0 and height - (y + 2) >= 2 * (left - 1) else 1
    return chips, placed


def _group_by_state(clients: tuple[ClientView, ...], peers: list[Port], conns: dict[Port, Connection]) -> list[_Party]:
    groups: dict[str, _Party] = {}

    def add(state: str, port: Port, conn: Connection | None) -> None:
        if conn is not None and conn.state in KNOCKS:
            state = "connecting"
        group = groups.get(state)
        if group is None:
            order: tuple[Port | str, ...] = (LIVE_ORDER.index(state),) if state in LIVE_ORDER else (9, state)
            group = groups[state] = _Party(f"group:{state}", "", state, order, 0)
        group.count += 1
        if conn is not None:
            group.ports.append(port)
            group.knocking |= conn.state == "syn_sent"
            group.half_open |= conn.state == "syn_recv"

    for client in clients:
        port = client.local_port
        add(client.state, port, conns.get(port) if client.open and port else None)
    for port in peers:
        add(PEER_STATES.get(conns[port].state, "connecting"), port, conns[port])
    for group in groups.values():
        group.label = f"×{group.count} {group.state}"
    return sorted(groups.values(), key=lambda g: g.order)


# -- the lines -----------------------------------------------------------------------


def _wires(
    chips: list[Chip],
    placed: dict[str, _Party],
    fd_rows: dict[Port, list[Target]],
    slot_rows: dict[Port, Target],
    listens: list[ListenBox],
    listen_rows: list[Target],
    lx: int,
    px: int,
) -> list[Wire]:
    wires: list[Wire] = []
    lanes_a = list(range(lx - 2, CLIENT_W, -1))
    bus = lx + LISTEN_W + 1
    lanes_b = list(range(px - 2, bus + 1, -1)) or [px - 2]
    a = up = down = 0
    for chip in chips:
        party = placed[chip.key]
        # dicts as ordered sets: a group's thousand ports name a handful of targets
        slots = dict.fromkeys(slot_rows[port] for port in party.ports if port in slot_rows)
        fds = dict.fromkeys(target for port in party.ports for target in fd_rows.get(port, ()))
        targets_slot, targets_fd = list(slots), list(fds)
        if party.count > 1:
            # A group joins the queue once and each box holding its connections once.
            targets_slot = targets_slot[:1]
            boxes = dict.fromkeys(key for key, _ in targets_fd)
            targets_fd = [next(t for t in targets_fd if t[0] == key) for key in list(boxes)[:MAX_GROUP_WIRES]]
        start = (CLIENT_W, chip.y)
        points: tuple[tuple[int, int], ...]
        for key, sy in targets_slot:
            if sy == chip.y:
                points = (start, (lx - 1, sy))
            else:
                lane = lanes_a[a % len(lanes_a)]
                a += 1
                points = (start, (lane, chip.y), (lane, sy), (lx - 1, sy))
            wires.append(Wire(chip.key, key, points, "queued", chip.state))
        if (party.knocking or party.half_open) and listens:
            wires.append(Wire(chip.key, listens[0].key, (start, (lx - 2, chip.y)), "knock", chip.state))
        bends = [t for t in targets_fd if t[1] != chip.y]
        if bends:
            # One lane a chip: its lines to several fds (a leaked one) branch off one trunk.
            # Chips bending up take lanes from the left, bending down from the right: in the
            # order the chips come, neither kind then crosses its own kind.
            if min(ty for _, ty in bends) < chip.y:
                lane = lanes_b[-1 - up % len(lanes_b)]
                up += 1
            else:
                lane = lanes_b[down % len(lanes_b)]
                down += 1
        for key, ty in targets_fd:
            points = (start, (px - 1, ty)) if ty == chip.y else (start, (lane, chip.y), (lane, ty), (px - 1, ty))
            wires.append(Wire(chip.key, key, points, "conn", chip.state))
    # The listening socket to every fd that holds it: a bus, branching to each process.
    if listens:
        source = listens[0]
        sy = source.y + 1
        for key, ty in listen_rows:
            points = ((lx + LISTEN_W, sy), (bus, sy), (bus, ty), (px - 1, ty))
            wires.append(Wire(source.key, key, points, "listen", "listen"))
    return wires
