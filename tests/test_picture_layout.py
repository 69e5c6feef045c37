"""The picture's layout on hand-made snapshots: who is drawn where, which lines join what."""

from __future__ import annotations

from picture_scenes import ROOT, SCENES, accepted, client, conn_fd, proc, snap
from svcviz.observe.snapshot import Connection
from svcviz.picture import draw, layout
from svcviz.picture.layout import CLIENT_W, MIN_H, MIN_W, tree_order

SIZE = (118, 32)


def picture(name: str, size=SIZE):
    snapshot, clients, model = SCENES[name]()
    return layout(snapshot, clients, *size, model)


def test_serial_queue_slots_are_filled_in_order_and_the_served_client_joins_its_fd():
    p = picture("serial")
    (box,) = p.listens
    assert box.capacity == 9 and len(box.slots) == 9 and box.queued == 2
    assert [s.label for s in box.slots[:3]] == ["1 #2", "2 #3", "3 ·"]
    # each waiting client sits beside its slot, its line straight into it
    for chip_key, slot in (("client:2", box.slots[0]), ("client:3", box.slots[1])):
        (wire,) = [w for w in p.wires if w.src == chip_key]
        assert wire.kind == "queued" and wire.dst == box.key and wire.end[1] == slot.y == p.chip(chip_key).y
    (server,) = p.boxes
    row = next(r for r in server.rows if r.text == "4 ← #1")
    (wire,) = [w for w in p.wires if w.src == "client:1"]
    assert wire.dst == f"proc:{ROOT}" and wire.end == (server.x - 1, row.y)
    # the listening socket joins the server's fd 3
    assert p.joined(box.key) == {f"proc:{ROOT}"}


def test_fork_zombie_is_an_empty_grey_box_labelled_zombie_and_holds_no_line():
    p = picture("fork-zombie")
    zombie = p.box("proc:4251")
    assert zombie.zombie and zombie.title == "4251 zombie" and [r.text for r in zombie.rows] == [""]
    assert not any(w.dst == zombie.key for w in p.wires)
    assert p.joined("client:2") == {"proc:4250"} and p.joined("client:1") == set()
    # a child's box comes right after its parent's
    assert [b.key for b in p.boxes] == [f"proc:{ROOT}", "proc:4250", "proc:4251"]
    assert p.chip("client:1").label == "#1 closed"


def test_leaked_fd_joins_every_client_to_the_parent_as_well_as_to_its_child():
    p = picture("fork-leak-fd")
    parent = p.box(f"proc:{ROOT}")
    assert [r.text for r in parent.rows] == ["3 listen", "4 ← #1", "5 ← #2", "6 ← #3"]
    for i in range(3):
        joined = p.joined(f"client:{i + 1}")
        assert parent.key in joined and f"proc:{4250 + i}" in joined
    # every conn row of the parent has a line ending on it
    ends = {w.end for w in p.wires if w.dst == parent.key and w.kind == "conn"}
    assert ends == {(parent.x - 1, r.y) for r in parent.rows if r.kind == "conn"}


def test_threads_are_named_on_the_rows_they_serve():
    p = picture("thread")
    (box,) = p.boxes
    assert "4 threads" in box.title
    assert [r.text for r in box.rows if r.kind == "conn"] == [
        f"{4 + i} ← #{i + 1}  thread {ROOT + 1 + i}" for i in range(3)
    ]


def test_prefork_workers_share_the_listening_socket_and_the_fifth_waits():
    p = picture("prefork")
    (listen,) = p.listens
    assert p.joined(listen.key) == {b.key for b in p.boxes}  # one socket, five fd 3s
    assert {w.kind for w in p.wires if w.src == "client:5"} == {"queued"}
    assert [b.title for b in p.boxes] == ["4242 parent", *(f"{ROOT + 1 + i} worker" for i in range(4))]


def test_event_one_box_holds_every_line():
    p = picture("event")
    (box,) = p.boxes
    assert all(p.joined(f"client:{i}") == {box.key} for i in range(1, 11))
    assert sum(1 for w in p.wires if w.kind == "conn") == 10


def test_a_crowd_is_grouped_by_state_and_role():
    p = picture("crowd")
    assert {c.label for c in p.chips} == {"×800 waiting", "×200 served"}
    assert [b.title for b in p.boxes] == ["4242 parent", "×200 children"]
    group = p.boxes[1]
    assert group.count == 200 and [r.text for r in group.rows] == ["3 listen, each", "1 connection each"]
    assert p.joined("group:served") == {group.key}
    (listen,) = p.listens
    assert p.joined("group:waiting") == {listen.key} and listen.queued == 800
    assert listen.slots[-1].label == f"… +{800 - len(listen.slots) + 1} waiting"
    # nothing drawn outside the panel
    assert all(0 <= c.y < SIZE[1] for c in p.chips) and all(b.y + b.h <= SIZE[1] for b in p.boxes)


def test_many_processes_in_a_small_panel_are_grouped_never_drawn_past_its_edge():
    snapshot, clients, model = SCENES["crowd"](children=40, clients=40)
    p = layout(snapshot, clients, 100, 20, model)
    assert all(b.y + b.h <= 20 for b in p.boxes) and all(c.y < 20 for c in p.chips)
    assert sum(b.count for b in p.boxes) == 41


def test_knocking_clients_are_drawn_outside_the_full_queue_half_open_marked():
    full = [Connection(f"127.0.0.1:{40000 + i}", "127.0.0.1:6168", "queued", "ESTABLISHED") for i in range(2)]
    knock = Connection("127.0.0.1:40100", "127.0.0.1:6168", "syn_sent", "SYN_SENT")
    half = Connection("127.0.0.1:40101", "127.0.0.1:6168", "syn_recv", "SYN_RECV")
    clients = [client(i + 1, "waiting", 40000 + i) for i in range(2)]
    clients += [client(3, "connecting", 40100), client(4, "connecting", 40101)]
    p = layout(snap([proc(ROOT, 1)], [*full, knock, half], backlog=1), clients, *SIZE, "listen-only")
    (listen,) = p.listens
    assert listen.full and [s.label for s in listen.slots] == ["1 #1", "2 #2"]
    for key, word in (("client:3", "SYN_SENT"), ("client:4", "half-open")):
        (wire,) = [w for w in p.wires if w.src == key]
        assert wire.kind == "knock" and wire.end[0] < listen.x and word in p.chip(key).label
    rows = [t.plain for t in draw(p)]
    assert "✕" in rows[p.chip("client:3").y]


def test_peers_of_a_watched_server_are_drawn_by_port():
    s = snap([proc(ROOT, 1, (conn_fd(4, 50000),))], [accepted(50000, ROOT, 4)])
    p = layout(s, [], *SIZE, "watch")
    assert p.chip("peer:50000").label == ":50000" and p.joined("peer:50000") == {f"proc:{ROOT}"}


def test_an_adopted_orphan_is_marked():
    s = snap([proc(4250, 1, (conn_fd(4, 40002),), adopted=True)], [accepted(40002, 4250, 4)], listening=False)
    p = layout(s, [client(1, "served", 40002)], *SIZE, "fork")
    assert "orphan, adopted" in p.box("proc:4250").title and p.box("proc:4250").adopted
    assert any("no listening" in text for _, _, text in p.notes)


def test_too_small_says_why_and_draws_nothing():
    p = picture("serial", (MIN_W - 1, MIN_H))
    assert p.off and "make the window larger" in p.off and not p.chips and not p.wires
    assert draw(p)[0].plain.startswith("the picture needs")


def test_client_text_is_never_markup():
    s, _, model = SCENES["serial"]()
    evil = client(1, "[b]x[/b]", 41000)
    p = layout(s, [evil], *SIZE, model)
    row = draw(p)[p.chip("client:1").y]
    assert row.plain.startswith(" #1 [b]x[/b]") and not any(span.style == "b" for span in row.spans)


def test_lines_never_start_inside_a_chip_and_chips_stay_in_their_column():
    for name in SCENES:
        p = picture(name)
        assert all(w.points[0][0] in (CLIENT_W,) or w.kind == "listen" for w in p.wires), name
        ys = [c.y for c in p.chips]
        assert len(ys) == len(set(ys)), name


def test_tree_order_puts_children_after_their_parent_and_orphans_last():
    s = snap([proc(4252, 4250), proc(ROOT, 1), proc(4250), proc(4251), proc(99, 1, adopted=True)])
    assert [p.pid for p in tree_order(s)] == [ROOT, 4250, 4252, 4251, 99]
