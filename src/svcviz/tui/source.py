"""A model's source as the code panel shows it, and which of its lines each thread is on.

The models mark the lines where they make the lecture's system calls with a short comment,
`# syscall: accept` (several: `# syscall: read, write`; `(main)` when only the server's
first thread makes it there, as the parent's sleep at the process cap). A thread blocked in
accept4 is on the model's `accept` line; one in recvfrom on the `read` line. Code the
models share (net.handle_connection, serial.serve_clients...) follows the model's own
module as the sections it calls: the lines are the source as installed, so they cannot
drift from what runs (tests/test_code_panel.py checks every model's marks).
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Mapping
from pathlib import Path
from types import FunctionType, ModuleType
from typing import NamedTuple

from svcviz.observe import syscalls
from svcviz.observe.snapshot import Snapshot

MARKER = re.compile(r"#\s*syscall:\s*([a-z]+(?:\s*,\s*[a-z]+)*)(\s*\(main\))?")

# A marker's word -> the system calls that are it (what /proc/PID/task/TID/syscall or strace names).
CALLS: dict[str, frozenset[str]] = {
    "accept": syscalls.ACCEPTS,
    "read": syscalls.RECEIVES,
    "write": syscalls.SENDS,
    "poll": syscalls.EVENT_WAITS,
    "wait": frozenset({"wait4", "waitid"}),
    "clone": syscalls.FORKS,
    "sleep": frozenset({"nanosleep", "clock_nanosleep"}),
    "sigwait": frozenset({"rt_sigtimedwait"}),
    "pause": frozenset({"pause", "rt_sigsuspend"}),
    "exit": syscalls.EXITS,
    "close": frozenset({"close"}),
}
WORD_OF = {call: word for word, calls in CALLS.items() for call in calls}


class Line(NamedTuple):
    number: int  # in its file, as an editor counts
    text: str
    words: tuple[str, ...] = ()  # the marker's words: ("accept",)
    main_only: bool = False


class Section(NamedTuple):
    path: str  # "svcviz/servers/net.py"
    title: str  # "svcviz/servers/fork.py" or "svcviz/servers/net.py: handle_connection"
    lines: tuple[Line, ...]
    function: str = ""  # the shared function it shows; "" for the model's module


def marked(number: int, text: str) -> Line:
    match = MARKER.search(text)
    if not match:
        return Line(number, text)
    words = tuple(word.strip() for word in match.group(1).split(","))
    return Line(number, text, words, bool(match.group(2)))


def _path_of(module: ModuleType) -> str:
    """ "svcviz/servers/fork.py": from the module's name, not its file's path (a checkout may
    itself be in a folder named svcviz)."""
    return module.__name__.replace(".", "/") + Path(inspect.getfile(module)).suffix


def _section(source: str, first: int, path: str, title: str, function: str = "") -> Section:
    lines = tuple(marked(first + i, text) for i, text in enumerate(source.splitlines()))
    return Section(path, title, lines, function)


def _helpers(source: str, namespace: Mapping[str, object], own: str) -> list[FunctionType]:
    """The functions of other servers modules this source calls by name, in first-use order."""
    found: list[FunctionType] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            value = namespace.get(node.id)
            if (
                isinstance(value, FunctionType)
                and value.__module__.startswith("svcviz.servers.")
                and value.__module__ != own
                and value not in found
            ):
                found.append(value)
    return found


def document(module: ModuleType) -> tuple[Section, ...]:
    """The model's module, then each shared function it reaches that carries markers."""
    source = inspect.getsource(module)
    sections = [_section(source, 1, _path_of(module), _path_of(module))]
    seen: set[FunctionType] = set()
    todo = _helpers(source, vars(module), module.__name__)
    while todo:
        func = todo.pop(0)
        if func in seen:
            continue
        seen.add(func)
        lines, first = inspect.getsourcelines(func)
        text = "".join(lines)
        home = inspect.getmodule(func)
        assert home is not None  # _helpers found func in an imported svcviz.servers module
        section = _section(text, first, _path_of(home), f"{_path_of(home)}: {func.__name__}", func.__name__)
        reached = _helpers(text, vars(home), module.__name__)
        if any(line.words for line in section.lines):
            sections.append(section)
        todo += [f for f in reached if f not in seen]
    return tuple(sections)


def marked_lines(sections: tuple[Section, ...]) -> list[tuple[int, int, Line]]:
    """(section index, line index, line) of every marked line."""
    return [(s, i, line) for s, section in enumerate(sections) for i, line in enumerate(section.lines) if line.words]


def line_for(sections: tuple[Section, ...], word: str, main: bool) -> tuple[int, int] | None:
    """Where a thread whose call is `word` is: a main-only line for the main thread if there
    is one, else the line every thread may be on; None when no line is marked so."""
    candidates = [(s, i, line) for s, i, line in marked_lines(sections) if word in line.words]
    if main:
        mains = [c for c in candidates if c[2].main_only]
        if mains:
            return mains[0][:2]
    anyone = [c for c in candidates if not c[2].main_only]
    return anyone[0][:2] if anyone else None


class Here(NamedTuple):
    """Someone on a line now: a thread blocked in a call, or a zombie on its exit."""

    tid: int
    call: str  # "accept4", "recvfrom"; "zombie"


class Placed(NamedTuple):
    at: dict[tuple[int, int], tuple[Here, ...]]  # (section, line) -> who is there
    elsewhere: tuple[tuple[int, str], ...]  # (tid, what): running, or in a call no line marks
    # (section, line) of a call to a shared function shown below -> who is inside it now:
    # the model's own line says where its threads are even when that section is off screen.
    inside: dict[tuple[int, int], tuple[Here, ...]]


def place(sections: tuple[Section, ...], snapshot: Snapshot) -> Placed:
    """Each thread of the server's tree on the line of the call it is blocked in."""
    at: dict[tuple[int, int], list[Here]] = {}
    elsewhere: list[tuple[int, str]] = []
    for process in snapshot.processes:
        if process.zombie:
            spot = line_for(sections, "exit", main=False)
            if spot is None:
                elsewhere.append((process.pid, "zombie"))
            else:
                at.setdefault(spot, []).append(Here(process.pid, "zombie"))
            continue
        for thread in process.threads:
            call = thread.syscall
            word = WORD_OF.get(call) if call else None
            spot = line_for(sections, word, main=thread.tid == snapshot.root_pid) if word else None
            if call is None or spot is None:
                elsewhere.append((thread.tid, call or ("running" if thread.state == "R" else "?")))
            else:
                at.setdefault(spot, []).append(Here(thread.tid, call))
    inside: dict[tuple[int, int], list[Here]] = {}
    for s in range(len(sections) - 1, 0, -1):  # the last shared function first: calls nest downwards
        within = [h for (ss, _), here in (*at.items(), *inside.items()) if ss == s for h in here]
        if not within:
            continue
        for spot in calls_of(sections, sections[s].function, before=s):
            inside.setdefault(spot, []).extend(h for h in within if h not in inside.get(spot, ()))
    return Placed(_sorted(at), tuple(elsewhere), _sorted(inside))


def _sorted(spots: dict[tuple[int, int], list[Here]]) -> dict[tuple[int, int], tuple[Here, ...]]:
    return {spot: tuple(sorted(here, key=lambda h: h.tid)) for spot, here in spots.items()}


def calls_of(sections: tuple[Section, ...], function: str, before: int) -> list[tuple[int, int]]:
    """The lines of the sections before `before` that call function (not its `def`)."""
    call = re.compile(rf"(?<![\w.]){re.escape(function)}\(")
    return [
        (s, i)
        for s in range(before)
        for i, line in enumerate(sections[s].lines)
        if call.search(line.text.split("#", 1)[0]) and not line.text.lstrip().startswith("def ")
    ]
