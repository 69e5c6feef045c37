"""The panels' pure parts: tree order, fitting rows, the minute of history; coalescing."""

from __future__ import annotations

from rich.text import Text

from big_servers import threads_200
from replay_lab import ReplayLab, drawn_after
from svcviz.clients import ClientView
from svcviz.lab import LabUpdate
from svcviz.observe.snapshot import Event, Process, Snapshot, Thread
from svcviz.servers.config import ServerConfig
from svcviz.tui.app import SvcvizApp, _same_picture
from svcviz.tui.history import History
from svcviz.tui.messages import LabUpdated
from svcviz.tui.widgets import EventsPanel
from svcviz.tui.widgets.clients import ClientTable
from svcviz.tui.widgets.server import tree_order
from svcviz.tui.widgets.text import fit


def proc(pid: int, ppid: int, state: str = "S", adopted: bool = False) -> Process:
    return Process(pid, ppid, "svcviz", state, (Thread(pid, state),), adopted=adopted)


def test_tree_is_depth_first_from_the_root_with_orphans_last():
    snap = Snapshot(
        time=0,
        root_pid=10,
        processes=(proc(12, 10), proc(99, 1, adopted=True), proc(10, 1), proc(11, 10, "Z"), proc(13, 12)),
    )
    assert [(depth, p.pid) for depth, p in tree_order(snap.root_pid, snap.processes)] == [
        (0, 10),
        (1, 11),
        (1, 12),
        (2, 13),
        (0, 99),
    ]


def test_fit_says_how_many_rows_did_not_fit():
    lines = [Text(str(i)) for i in range(10)]
    assert fit(lines, 4).plain.splitlines() == ["0", "1", "2", "… 7 more"]
    assert fit(lines, 20).plain.splitlines() == [str(i) for i in range(10)]


def test_history_keeps_one_minute_of_each_figure():
    history = History()
    for second in range(120):
        history.add(
            Snapshot(time=1000.0 + second, root_pid=1, processes=tuple(proc(p, 1) for p in range(1 + second % 3)))
        )
    assert [second for second, _ in history.seconds] == list(range(1060, 1120))
    series = history.series("processes")
    assert len(series) == 60 and series[-3:] == (1, 2, 3)  # seconds 117, 118, 119
    for tenth in range(10):  # ten samples in one second: that second's peak
        history.add(Snapshot(time=1120.0 + tenth / 10, root_pid=1, processes=tuple(proc(p, 1) for p in range(tenth))))
    assert history.series("processes")[-1] == 9 and history.latest("processes") == 9


def update_at(time: float, *events: Event) -> LabUpdate:
    return LabUpdate(
        snapshot=Snapshot(time=time, root_pid=1),
        events=events,
        clients=(),
        config=ServerConfig("serial"),
        server_pid=1,
        status="running",
        cap_hit=None,
    )


def test_a_newer_update_supersedes_a_pending_one_unchanged():
    older, newer = LabUpdated(update_at(1.0)), LabUpdated(update_at(2.0))
    assert newer.can_replace(older) and newer.update.snapshot.time == 2.0 and older.update.snapshot.time == 1.0


async def test_superseded_updates_leave_their_events_in_the_log():
    """A flood of samples while the app is busy: only the newest is drawn, no event is lost."""
    lab = ReplayLab()
    app = SvcvizApp(lab, picture=False)
    async with app.run_test() as pilot:
        flood = [update_at(1.0 + i, Event(1.0 + i, "fork", f"fork {i}")) for i in range(50)]
        lab.push(*flood[:-1])
        await drawn_after(pilot, lab, flood[-1])
        assert [e.text for e in app.event_log] == [f"fork {i}" for i in range(50)]
        assert "fork 49" in app.query_one(EventsPanel).render().plain


def clients(*ids: int) -> tuple[ClientView, ...]:
    return tuple(ClientView(i, "interactive", "served", True, 40000 + i, 0.1, 0, 0, None, None, 1.0) for i in ids)


async def test_the_client_selection_follows_its_client_and_starts_from_the_newest():
    lab = ReplayLab()
    app = SvcvizApp(lab, picture=False)
    async with app.run_test() as pilot:
        await drawn_after(pilot, lab, update_at(1.0)._replace(clients=clients(1, 2, 3, 4, 5)))
        table = app.query_one(ClientTable)
        assert table.selected_id == 5 and table.row_count == 5  # nobody chose: the newest open client
        await pilot.press("up")
        assert table.selected_id == 4
        # The oldest client pruned and a new one added: the row under the cursor moves, the selection not.
        await drawn_after(pilot, lab, update_at(2.0)._replace(clients=clients(2, 3, 4, 5, 6)))
        assert table.selected_id == 4 and table.row_count == 5
        await drawn_after(pilot, lab, update_at(3.0)._replace(clients=clients(5, 6)))
        assert table.selected_id == 6  # its client is gone: the newest open one is selected


def ended(view: ClientView) -> ClientView:
    return view._replace(state="quit", open=False)


async def test_a_chosen_client_that_ends_hands_the_selection_to_the_newest_open_one():
    lab = ReplayLab()
    app = SvcvizApp(lab)
    async with app.run_test() as pilot:
        one, two, three = clients(1, 2, 3)
        await drawn_after(pilot, lab, update_at(1.0)._replace(clients=(one, two, three)))
        table = app.query_one(ClientTable)
        await pilot.press("home")
        assert table.selected_id == 1
        await drawn_after(pilot, lab, update_at(2.0)._replace(clients=(ended(one), two, three)))
        assert table.selected_id == 3
        # The newest ends: the selection moves to the newest still open.
        await drawn_after(pilot, lab, update_at(3.0)._replace(clients=(ended(one), two, ended(three))))
        assert table.selected_id == 2
        # Chosen on purpose, a finished client stays selected, and x says it has ended.
        await pilot.press("home")
        assert table.selected_id == 1
        await pilot.press("x")
        await pilot.pause(0.1)
        assert any("#1 already ended (quit)" in str(n.message) for n in app._notifications)
        await pilot.press("end")
        assert table.selected_id == 2


def test_an_unchanged_sample_is_told_from_every_field_but_the_time_and_events():
    shown = threads_200()
    later = shown._replace(snapshot=shown.snapshot._replace(time=shown.snapshot.time + 0.1))
    assert _same_picture(shown, later)
    assert not _same_picture(shown, later._replace(events=(Event(0.0, "fork", "fork 1"),)))
    for name, value in (("notes", ("a note",)), ("netns", 4026531840), ("processes", ()), ("root_pid", 1)):
        assert not _same_picture(shown, later._replace(snapshot=later.snapshot._replace(**{name: value})))
    for name, value in (("status", "killed"), ("still", True), ("client_protocol", "http"), ("cap_hit", "cap")):
        assert not _same_picture(shown, later._replace(**{name: value}))
