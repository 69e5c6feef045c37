"""The recording format on plain data: encode, decode, deltas, gzip, a cut tail."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from svcviz.clients.view import ClientView
from svcviz.lab import LabUpdate
from svcviz.observe.snapshot import Connection, Counters, Event, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.record.format import VERSION, Decoder, Encoder, FormatError
from svcviz.record.reader import Recording
from svcviz.record.writer import RecordError, Writer
from svcviz.servers.config import ServerConfig


def process(pid: int, state: str = "S", fds: int = 1) -> Process:
    return Process(
        pid=pid,
        ppid=1 if pid == 100 else 100,
        name="svcviz",
        state=state,
        threads=(Thread(pid, state, "main"),),
        rss=4096 * pid,
        fds=tuple(
            Fd(3 + n, "conn", peer=f"127.0.0.1:{40000 + n}", local="127.0.0.1:6168", inode=n) for n in range(fds)
        ),
        cmdline="svcviz serve fork",
    )


FORK = ServerConfig("fork")


def update(t: float, processes, connections=(), clients=(), events=(), config=FORK) -> LabUpdate:
    snapshot = Snapshot(
        time=t,
        root_pid=100,
        listen=(ListenSocket("127.0.0.1:6168", 6168, queue=len(connections), backlog=8, pid=100, fd=3, inode=9),),
        processes=tuple(processes),
        connections=tuple(connections),
        counters=Counters(listen_overflows=2, listen_drops=3),
    )
    return LabUpdate(snapshot, tuple(events), tuple(clients), config, 100, "running", None)


def client(cid: int, state: str = "waiting") -> ClientView:
    return ClientView(cid, "interactive", state, True, 40000 + cid, 0.3, 0, 0, None, None, 1.0)


def session() -> list[LabUpdate]:
    parent = process(100)
    child = process(101)
    conn = Connection("127.0.0.1:40001", "127.0.0.1:6168", "queued", "ESTABLISHED")
    return [
        update(1.0, [parent]),
        update(1.1, [parent], [conn], [client(1)]),
        update(1.2, [parent, child], [conn._replace(state="accepted", pid=101, fd=4)], [client(1, "idle")]),
        update(
            1.3, [parent, child._replace(state="Z", threads=(), fds=())], events=[Event(1.3, "exit", "exit 101", 101)]
        ),
        update(1.4, [parent], config=ServerConfig("fork", sigchld="reap")),
        update(1.5, [process(102), parent]),  # a new order: not the old one plus the new at the end
    ]


def roundtrip(updates: list[LabUpdate]) -> tuple[list[dict], list[LabUpdate]]:
    encoder, decoder = Encoder(), Decoder()
    lines = [json.loads(json.dumps(encoder.encode(u))) for u in updates]  # through real JSON text
    return lines, [decoder.decode(line) for line in lines]


def test_decoding_gives_back_every_update():
    updates = session()
    _, decoded = roundtrip(updates)
    assert decoded == updates


def test_only_what_changed_is_written():
    lines, _ = roundtrip(session())
    assert {"config", "listen", "processes", "counters"} <= lines[0].keys()
    assert "processes" not in lines[1] and "config" not in lines[1]  # the same process objects
    assert [p["pid"] for p in lines[2]["processes"]["set"]] == [101]  # the new child, not the parent
    assert lines[3]["processes"]["set"][0]["state"] == "Z" and "gone" not in lines[3]["processes"]
    assert lines[3]["events"][0]["kind"] == "exit"
    assert lines[4]["processes"] == {"gone": [101]} and lines[4]["config"]["sigchld"] == "reap"
    assert lines[5]["processes"]["order"] == [[1, 1], [0, 1]]  # expected [100, 102]: 102 first


def test_an_item_new_in_the_middle_costs_a_few_runs_not_the_whole_order():
    """The kernel's hash order: a new connection lands mid-list, the others keep their order."""
    conns = [Connection(f"127.0.0.1:{40000 + n}", "127.0.0.1:6168", "queued", "ESTABLISHED") for n in range(1000)]
    new = Connection("127.0.0.1:39999", "127.0.0.1:6168", "queued", "ESTABLISHED")
    parent = process(100)
    updates = [update(1.0, [parent], conns), update(1.1, [parent], [*conns[:500], new, *conns[501:]])]
    lines, decoded = roundtrip(updates)
    assert decoded == updates
    assert lines[1]["connections"]["order"] == [[0, 500], [999, 1], [500, 499]]
    assert lines[1]["connections"]["gone"] == [["127.0.0.1:40500", "127.0.0.1:6168"]]


def test_an_unchanged_sample_is_a_time_alone():
    parent = process(100)
    lines, _ = roundtrip([update(1.0, [parent]), update(1.1, [parent])])
    assert lines[1] == {"t": 1.1}


def test_a_wrong_version_is_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"format": "svcviz-recording", "version": VERSION + 1, "started": 0}) + "\n")
    with pytest.raises(FormatError, match="version"):
        Recording(str(path))
    path.write_text("hello\n")
    with pytest.raises(FormatError, match="not an svcviz recording"):
        Recording(str(path))


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_a_file_written_then_read(tmp_path, name):
    path = str(tmp_path / name)
    writer = Writer(path)
    for u in session():
        writer.write(u)
    writer.close()
    recording = Recording(path)
    assert list(recording) == session() and not recording.truncated
    assert recording.at(0.25).snapshot.time == 1.2
    assert recording.duration() == pytest.approx(0.5)
    if name.endswith(".gz"):
        with gzip.open(path, "rt") as f:
            assert json.loads(f.readline())["version"] == VERSION


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_a_file_cut_mid_sample_reads_to_its_last_whole_sample(tmp_path, name):
    """What SIGKILL leaves: no close, and the last bytes of a sample missing."""
    path = str(tmp_path / name)
    writer = Writer(path)
    updates = session()
    for u in updates[:4]:
        writer.write(u)
    size_after_four = os.path.getsize(path)
    writer.write(updates[4])  # never closed: gzip has no end-of-stream marker
    whole = open(path, "rb").read()
    cut = whole[: size_after_four + (len(whole) - size_after_four) // 2]
    open(path, "wb").write(cut)
    recording = Recording(path)
    assert recording.truncated
    assert list(recording) == updates[:4]


def test_an_unwritable_path_is_one_error(tmp_path):
    with pytest.raises(RecordError, match="cannot write the recording"):
        Writer(str(tmp_path / "no" / "such" / "dir.jsonl"))


def test_a_namespaced_unreadable_server_is_recorded_with_its_namespace_and_notes():
    """netns, its label and the notes come back; a recording made before them reads as
    our own namespace with nothing to note."""
    first = update(1.0, [process(100)])
    snapshot = first.snapshot._replace(netns=4026532290, netns_label="web1", notes=("owners unknown: run as root",))
    updates = [first._replace(snapshot=snapshot), first._replace(snapshot=snapshot._replace(time=1.1, notes=()))]
    lines, decoded = roundtrip(updates)
    assert decoded == updates
    old = {key: value for key, value in lines[0].items() if key not in ("netns", "netns_label", "notes")}
    (before,) = [Decoder().decode(old)]
    assert (before.snapshot.netns, before.snapshot.netns_label, before.snapshot.notes) == (None, None, ())
