"""The panels' pure parts: tree order, fitting rows, the minute of history, coalescing."""

from __future__ import annotations

from rich.text import Text

from svcviz.observe.snapshot import Event, Process, Snapshot, Thread
from svcviz.tui.history import History
from svcviz.tui.messages import LabUpdated
from svcviz.tui.widgets.server import tree_order
from svcviz.tui.widgets.sparks import spark
from svcviz.tui.widgets.text import fit


def proc(pid: int, ppid: int, state: str = "S", adopted: bool = False) -> Process:
    return Process(pid, ppid, "svcviz", state, (Thread(pid, state),), adopted=adopted)


def test_tree_is_depth_first_from_the_root_with_orphans_last():
    snap = Snapshot(
        time=0,
        root_pid=10,
        processes=(proc(12, 10), proc(99, 1, adopted=True), proc(10, 1), proc(11, 10, "Z"), proc(13, 12)),
    )
    assert [(depth, p.pid) for depth, p in tree_order(snap)] == [(0, 10), (1, 11), (1, 12), (2, 13), (0, 99)]


def test_fit_says_how_many_rows_did_not_fit():
    lines = [Text(str(i)) for i in range(10)]
    assert fit(lines, 4).plain.splitlines() == ["0", "1", "2", "… 7 more"]
    assert fit(lines, 20).plain.splitlines() == [str(i) for i in range(10)]


def test_history_keeps_one_minute_and_peaks_per_column():
    history = History()
    for second in range(120):
        history.add(
            Snapshot(time=1000.0 + second, root_pid=1, processes=tuple(proc(p, 1) for p in range(1 + second % 3)))
        )
    assert history.samples[0][0] >= 1119 - 60
    columns = history.columns("processes", 6)
    assert columns == [3, 3, 3, 3, 3, 3] and history.latest("processes") == 1 + 119 % 3
    assert spark([0, 4, 8, None]) == "▁▄█ "


class Update:
    def __init__(self, *events: Event) -> None:
        self.events = events


def test_a_coalesced_update_keeps_the_events_of_the_one_it_replaces():
    first = LabUpdated(Update(Event(1.0, "fork", "fork 2")))
    second = LabUpdated(Update(Event(2.0, "exit", "2 exited")))
    assert first.can_replace(second)
    assert [e.text for e in second.events] == ["fork 2", "2 exited"]
    assert [e.text for e in first.events] == ["fork 2", "2 exited"]
