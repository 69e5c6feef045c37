"""The recording format: LabUpdates as JSON lines, each line only what changed.

Version 1 (docs/recording.md says every key):

- line 1, the header: {"format": "svcviz-recording", "version": 1, "started": <unix time>}
- then one line per sample: {"t": <unix time>, ...}, where each other key is present only
  when its value changed since the previous sample. Keyed lists (processes by pid,
  connections by (client, server), clients by id) are written as a change set:
  {"set": [changed or new items], "gone": [keys], "order": [[start, length], ...]}, "order"
  only when the order is not the old one less the gone plus the new at the end: then it
  is that expected order's indices, as runs.

An Encoder and a Decoder each keep the previous sample; feeding one's lines to the other
gives back equal LabUpdates. Nothing here touches a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from svcviz.clients.view import ClientView
from svcviz.lab import LabUpdate
from svcviz.observe.snapshot import Connection, Counters, Event, Fd, ListenSocket, Process, Snapshot, Thread
from svcviz.servers.config import ServerConfig

FORMAT = "svcviz-recording"
VERSION = 1


# A line of the recording, as json.loads makes it: its values are whatever the format says
# for each key (Any: JSON), checked as the Decoder turns them back into the snapshot's NamedTuples.
Json = dict[str, Any]


class FormatError(Exception):
    """Not a recording this svcviz can read: one line for the user."""


def header(started: float) -> Json:
    return {"format": FORMAT, "version": VERSION, "started": started}


def check_header(line: object) -> None:
    if not isinstance(line, dict) or line.get("format") != FORMAT:
        raise FormatError("not an svcviz recording (no header line)")
    if line.get("version") != VERSION:
        raise FormatError(f"recording format version {line.get('version')!r}: this svcviz reads version {VERSION}")


# -- plain data <-> NamedTuples ------------------------------------------------------------


def _process(data: Json) -> Process:
    return Process(
        **{
            **data,
            "threads": tuple(Thread(**t) for t in data["threads"]),
            "fds": tuple(Fd(**fd) for fd in data["fds"]),
        }
    )


def _as_data(item: Any) -> Json:
    """A flat NamedTuple as plain data (Any: each part's items are their own type)."""
    return dict(item._asdict())


def _process_data(process: Process) -> Json:
    return _as_data(process) | {
        "threads": [_as_data(t) for t in process.threads],
        "fds": [_as_data(fd) for fd in process.fds],
    }


def _listen_socket(data: Json) -> ListenSocket:
    """JSON has lists where the snapshot has tuples (pids holding and polling the socket)."""
    tuples: Json = {key: tuple(data[key]) for key in ("holders", "pollers") if key in data}
    return ListenSocket(**{**data, **tuples})


def _connection_key(conn: Connection) -> list[str]:
    return [conn.client, conn.server]


class _Keyed(NamedTuple):
    """A keyed part of a sample (Any: each part's items are their own NamedTuple)."""

    key_of: Callable[[Any], object]  # an item's key (a list for a connection: JSON has no tuples)
    to_data: Callable[[Any], Json]
    from_data: Callable[[Json], Any]


class _Whole(NamedTuple):
    """A part written whole (Any: each part is its own type, and JSON on the other side)."""

    to_data: Callable[[Any], Any]
    from_data: Callable[[Any], Any]


def _same_value(value: Any) -> Any:
    return value


# Each keyed part of a sample: how to read an item's key, make plain data of it, and back.
KEYED: dict[str, _Keyed] = {
    "processes": _Keyed(lambda p: p.pid, _process_data, _process),
    "connections": _Keyed(_connection_key, _as_data, lambda data: Connection(**data)),
    "clients": _Keyed(lambda c: c.id, _as_data, lambda data: ClientView(**data)),
}
# The parts written whole when they change: how to make plain data of each, and back.
WHOLE: dict[str, _Whole] = {
    "root_pid": _Whole(_same_value, _same_value),
    "listen": _Whole(lambda v: [_as_data(s) for s in v], lambda v: tuple(_listen_socket(s) for s in v)),
    "counters": _Whole(_as_data, lambda v: Counters(**v)),
    "unreadable": _Whole(list, tuple),
    "netns": _Whole(_same_value, _same_value),
    "netns_label": _Whole(_same_value, _same_value),
    "notes": _Whole(list, tuple),
    "config": _Whole(_as_data, lambda v: ServerConfig(**v)),
    "server_pid": _Whole(_same_value, _same_value),
    "status": _Whole(_same_value, _same_value),
    "cap_hit": _Whole(_same_value, _same_value),
}
# Parts a recording made before them does not have: what they were then.
ADDED_LATER = {"netns": None, "netns_label": None, "notes": ()}


def _parts(update: LabUpdate) -> dict[str, Any]:
    snap = update.snapshot
    return {
        "root_pid": snap.root_pid,
        "listen": snap.listen,
        "processes": snap.processes,
        "connections": snap.connections,
        "counters": snap.counters,
        "unreadable": snap.unreadable,
        "netns": snap.netns,
        "netns_label": snap.netns_label,
        "notes": snap.notes,
        "clients": update.clients,
        "config": update.config,
        "server_pid": update.server_pid,
        "status": update.status,
        "cap_hit": update.cap_hit,
    }


def _hashable(key: object) -> Hashable:
    return tuple(key) if isinstance(key, list) else key


class Encoder:
    """LabUpdate -> one line of plain data holding what changed since the last one."""

    def __init__(self) -> None:
        self._prev: dict[str, Any] | None = None
        self._items: dict[str, dict[Hashable, object]] = {name: {} for name in KEYED}  # part -> key -> item

    def encode(self, update: LabUpdate) -> Json:
        parts = _parts(update)
        line: dict[str, Any] = {"t": update.snapshot.time}
        for name, (to_data, _) in WHOLE.items():
            value = parts[name]
            if self._prev is None or self._prev[name] != value:
                line[name] = to_data(value)
        for name, (key_of, to_data, _) in KEYED.items():
            if self._prev is not None and self._prev[name] is parts[name]:
                continue
            change = self._change(name, parts[name], key_of, to_data)
            if change:
                line[name] = change
        if update.events:
            line["events"] = [_as_data(e) for e in update.events]
        self._prev = parts
        return line

    def _change(
        self, name: str, items: tuple[object, ...], key_of: Callable[[Any], object], to_data: Callable[[Any], Json]
    ) -> Json:
        old = self._items[name]
        new = {_hashable(key_of(item)): item for item in items}
        changed = [to_data(item) for key, item in new.items() if not _same(old.get(key), item)]
        gone = [key for key in old if key not in new]
        expected = [key for key in old if key in new] + [key for key in new if key not in old]
        change: dict[str, Any] = {}
        if changed:
            change["set"] = changed
        if gone:
            change["gone"] = [list(k) if isinstance(k, tuple) else k for k in gone]
        if expected != list(new):
            change["order"] = _runs(expected, list(new))
        self._items[name] = new
        return change


def _runs(expected: list[Hashable], actual: list[Hashable]) -> list[list[int]]:
    """actual as runs of expected's indices, [[start, length], ...]: the kernel lists
    connections in hash order, so one new socket lands mid-list and the rest keep theirs;
    a few runs say that where the whole list of keys would be a thousand of them."""
    where = {key: i for i, key in enumerate(expected)}
    runs: list[list[int]] = []
    for key in actual:
        i = where[key]
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1][1] += 1
        else:
            runs.append([i, 1])
    return runs


def _unrun(expected: list[Hashable], runs: list[list[int]]) -> list[Hashable]:
    return [expected[i] for start, length in runs for i in range(start, start + length)]


def _same(old: object, new: object) -> bool:
    return old is new or old == new  # the observer reuses unchanged objects: `is` is the cheap case


class Decoder:
    """The Encoder's lines -> the LabUpdates they were made of."""

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}
        self._items: dict[str, dict[Hashable, Any]] = {name: {} for name in KEYED}

    def decode(self, line: Json) -> LabUpdate:
        try:
            return self._decode(line)
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"a sample line does not fit format version {VERSION}: {exc}") from None

    def _decode(self, line: Json) -> LabUpdate:
        for name, (_, from_data) in WHOLE.items():
            if name in line:
                self._state[name] = from_data(line[name])
            elif name in ADDED_LATER and name not in self._state:
                self._state[name] = ADDED_LATER[name]
            elif name not in self._state:
                raise KeyError(f"{name} missing from the first sample")
        for name, (key_of, _, from_data) in KEYED.items():
            change = line.get(name, {})
            items = self._items[name]
            for key in change.get("gone", ()):
                items.pop(_hashable(key), None)
            for data in change.get("set", ()):
                item = from_data(data)
                items[_hashable(key_of(item))] = item
            if "order" in change:
                items = {key: items[key] for key in _unrun(list(items), change["order"])}
            self._items[name] = items
        state = self._state
        snapshot = Snapshot(
            time=line["t"],
            root_pid=state["root_pid"],
            listen=state["listen"],
            processes=tuple(self._items["processes"].values()),
            connections=tuple(self._items["connections"].values()),
            counters=state["counters"],
            unreadable=state["unreadable"],
            netns=state["netns"],
            netns_label=state["netns_label"],
            notes=state["notes"],
        )
        return LabUpdate(
            snapshot=snapshot,
            events=tuple(Event(**e) for e in line.get("events", ())),
            clients=tuple(self._items["clients"].values()),
            config=state["config"],
            server_pid=state["server_pid"],
            status=state["status"],
            cap_hit=state["cap_hit"],
        )


def dumps(line: Json) -> str:
    return json.dumps(line, separators=(",", ":")) + "\n"
