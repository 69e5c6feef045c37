"""The lecture's first half: file descriptors shared through pipes, before any socket.

    yes discard | svcviz parse | head -3      # ends at once: the parser streams
    svcviz parse | sort                       # nothing until the input ends
    (cat; cat; cat) | svcviz parse            # one cat at a time holds the pipe
    (cat & cat & cat &) | svcviz parse        # three writers, one pipe: whose line is it?

Each pipeline runs in bash in a session of its own; the scenario feeds each cat through
a pipe of its own (so it can give one cat EOF and not the others, as ctrl-D did in the
lecture) and judges from the kernel: which processes hold which pipe inode as fd 0 and
fd 1 (/proc/PID/fd), how many bytes each cat wrote (/proc/PID/io), whether a process has
exited, and what came out of the last pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shlex
import signal
import struct
import sys
import termios
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from svcviz import procstat
from svcviz.observe.procfs import read_io
from svcviz.scenarios.base import POLL, Claim, ClaimFailed, Result, Timing
from svcviz.services import load_db, reply

PARSE = shlex.join([sys.executable, "-m", "svcviz", "parse"])
ANSWER = reply(b"discard", load_db())  # "discard,9"


@dataclass(frozen=True)
class Holder:
    """A process of the pipeline and what its fd 0 and fd 1 are ("pipe:[123]", "/dev/null")."""

    pid: int
    name: str  # "cat", "parse", "bash", ...
    fd0: str
    fd1: str


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    words = [w.decode(errors="replace") for w in argv if w]
    if words[-2:] == ["svcviz", "parse"]:
        return "parse"
    return os.path.basename(words[0]) if words else ""


def alive_in_session(sid: int) -> list[int]:
    return sorted(stat.pid for stat in procstat.all_stats() if stat.session == sid and not stat.zombie)


def holders(sid: int) -> list[Holder]:
    """Every live process of the pipeline's session, with its fd 0 and fd 1."""
    return [
        Holder(pid, _name(pid), _link(f"/proc/{pid}/fd/0"), _link(f"/proc/{pid}/fd/1")) for pid in alive_in_session(sid)
    ]


def written(pid: int) -> int | None:
    """Bytes the process has written, by the kernel's count (/proc/PID/io wchar)."""
    io = read_io(pid)
    return io[1] if io is not None else None


# The pipeline's end if svcviz dies first (SIGKILL, a crash), since `yes` never ends by
# itself: this shell reads its stdin, whose write end only svcviz holds. A line means svcviz
# ended the pipeline itself; EOF, that svcviz is gone: it kills the pipeline's process group
# (a shell without job control keeps every stage, subshells and `&` jobs too, in its own).
GUARD = 'read -r _ || kill -KILL -- "-$1"'


class Pipeline:
    """A bash command line in its own session; its stdout is ours to read. A guard process
    kills it should svcviz die without closing it (see GUARD)."""

    def __init__(self, command: str, stdin: int | None = None, feeds: int = 0) -> None:
        self.command = command
        self.stdin = stdin
        self.feed_ends: list[int] = []  # our write end of each cat's input
        self._reads: list[int] = []
        for _ in range(feeds):
            read, write = os.pipe()
            self._reads.append(read)
            self.feed_ends.append(write)
            os.set_inheritable(read, True)
        self.proc: asyncio.subprocess.Process | None = None
        self._guard: asyncio.subprocess.Process | None = None
        self._guard_end = -1  # our end of the guard's stdin

    def fd(self, number: int) -> int:
        """The descriptor (in the shell) from which cat `number` (0-based) reads."""
        return self._reads[number]

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            self.command,
            stdin=self.stdin if self.stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            pass_fds=self._reads,
            start_new_session=True,
        )
        for read in self._reads:  # the shell has them now (at the same numbers, which fd() still gives)
            os.close(read)
        read, self._guard_end = os.pipe()
        try:
            self._guard = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                GUARD,
                "guard",
                str(self.sid),
                stdin=read,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read)

    @property
    def started(self) -> asyncio.subprocess.Process:
        """The shell, once start() made it."""
        assert self.proc is not None, "the pipeline is not started"
        return self.proc

    @property
    def sid(self) -> int:
        return self.started.pid

    def feed(self, cat: int, text: str) -> None:
        os.write(self.feed_ends[cat], text.encode())

    def end(self, cat: int) -> None:
        """EOF for one cat: our write end of its input closes (its ctrl-D)."""
        if self.feed_ends[cat] >= 0:
            os.close(self.feed_ends[cat])
            self.feed_ends[cat] = -1

    async def line(self, timeout: float) -> str | None:
        """The next line out of the pipeline, None if none comes in time (or at its end)."""
        try:
            stdout = self.started.stdout
            assert stdout is not None  # a PIPE: see start()
            got = await asyncio.wait_for(stdout.readline(), timeout)
        except asyncio.TimeoutError:
            return None
        return got.decode(errors="replace").rstrip("\n") if got else None

    def kill_now(self) -> None:
        """SIGKILL every stage now (a stopped one too), and dismiss the guard: what close()
        does first, for callers that cannot wait."""
        for cat in range(len(self.feed_ends)):
            self.end(cat)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.sid, signal.SIGKILL)
        if self._guard_end >= 0:
            with contextlib.suppress(OSError):
                os.write(self._guard_end, b"\n")
            os.close(self._guard_end)
            self._guard_end = -1

    async def close(self) -> None:
        self.kill_now()
        if self.proc is None:
            return
        await self.proc.wait()
        if self._guard is not None:
            await self._guard.wait()
        deadline = time.monotonic() + 3
        while alive_in_session(self.sid) and time.monotonic() < deadline:  # its orphans, once killed, exit
            await asyncio.sleep(POLL)


class PipeRun:
    """One run: the claims so far, its timing, and the pipelines to clean up."""

    def __init__(self, timing: Timing, changes: dict[str, str]) -> None:
        self.timing = timing
        self.parser = changes.get("parser", PARSE)  # a negative test puts a non-streaming stage here
        self.order = changes.get("order")  # a negative test runs the other form of the cats
        self.claims: list[Claim] = []
        self.pipelines: list[Pipeline] = []

    async def start(self, command: str, stdin: int | None = None, feeds: int = 0) -> Pipeline:
        pipeline = Pipeline(command, stdin, feeds)
        self.pipelines.append(pipeline)
        await pipeline.start()
        return pipeline

    def record(self, claim: str, expected: str, observed: str, passed: bool) -> None:
        self.claims.append(Claim(claim, expected, observed, passed))
        if not passed:
            raise ClaimFailed(claim)

    async def until(self, claim: str, expected: str, look: Callable[[], tuple[bool, str]]) -> None:
        deadline = time.monotonic() + self.timing.timeout
        while True:
            holds, observed = look()
            if holds or time.monotonic() > deadline:
                self.record(claim, expected, observed, holds)
                return
            await asyncio.sleep(POLL)

    async def throughout(self, claim: str, expected: str, look: Callable[[], tuple[bool, str]]) -> None:
        deadline = time.monotonic() + self.timing.hold
        while True:
            holds, observed = look()
            if not holds or time.monotonic() > deadline:
                self.record(claim, expected, observed, holds)
                return
            await asyncio.sleep(POLL)


@dataclass(frozen=True)
class PipeScenario:
    name: str
    title: str
    lecture: str
    steps: Callable[[PipeRun], Awaitable[None]] = field(repr=False)

    async def run(self, quick: bool = False, **changes: str) -> Result:
        """changes: parser= (the middle stage's command), order= ("shared" / "sequential"):
        the negative tests' way to run a pipeline that must not satisfy the claims."""
        began = time.monotonic()
        run = PipeRun(Timing.quick() if quick else Timing.full(), changes)
        error = None
        try:
            await self.steps(run)
        except ClaimFailed:
            pass
        except Exception as exc:  # a bug in a scenario fails that scenario, not the report
            error = f"{type(exc).__name__}: {exc}"
        finally:
            for pipeline in run.pipelines:
                await pipeline.close()
        return Result(self.name, self.title, tuple(run.claims), time.monotonic() - began, error)


def pipe_of(target: str) -> str | None:
    return target if target.startswith("pipe:[") else None


def describe(found: list[Holder]) -> str:
    return ", ".join(f"{h.name} {h.pid} (0={h.fd0 or '-'}, 1={h.fd1 or '-'})" for h in found) or "none"


# -- yes | serviceparser | head, and | sort -------------------------------------------


async def streaming(run: PipeRun) -> None:
    head = await run.start(f"yes discard | {run.parser} | head -3")
    began = time.monotonic()
    lines = [await head.line(run.timing.timeout) for _ in range(3)]
    run.record(
        "`yes discard | svcviz parse | head -3`: three answers come out",
        f"3 x {ANSWER!r}",
        f"{[x for x in lines if x is not None]}",
        lines == [ANSWER] * 3,
    )
    try:
        await asyncio.wait_for(head.started.wait(), run.timing.timeout)
    except asyncio.TimeoutError:
        pass
    took = time.monotonic() - began
    run.record(
        "and the pipeline ends, though yes never stops: the parser streams, head exits, "
        "the parser and yes die of SIGPIPE",
        f"ended within {run.timing.timeout:g} s, nothing of it left",
        f"ended after {took:.1f} s"
        if head.started.returncode is not None
        else f"still running: {describe(holders(head.sid))}",
        head.started.returncode is not None and not alive_in_session(head.sid),
    )
    read, write = os.pipe()
    try:
        sort = await run.start(f"{run.parser} | sort", stdin=read)
    finally:
        os.close(read)
    lines_in = 200
    try:
        os.write(write, b"discard\n" * lines_in)  # what yes would write, but an amount we can end

        def parsed_but_held() -> tuple[bool, str]:
            waiting = _unread(write)
            return waiting == 0, f"{waiting} bytes still unread by the parser"

        await run.until("the parser reads the lines as they come", "0 bytes waiting in its input pipe", parsed_but_held)
        first = await sort.line(run.timing.hold)
        run.record(
            "`svcviz parse | sort` with the input still open: sort says nothing",
            "no line out",
            "no line out" if first is None else f"a line out: {first!r}",
            first is None,
        )
    finally:
        os.close(write)  # the input ends: EOF for the parser, then for sort
    got = []
    while (line := await sort.line(run.timing.timeout)) is not None:
        got.append(line)
    run.record(
        "once its input ends, sort writes everything",
        f"{lines_in} x {ANSWER!r}",
        f"{len(got)} lines" + (f", e.g. {got[0]!r}" if got else ""),
        got == [ANSWER] * lines_in,
    )


def _unread(fd: int) -> int:
    """Bytes in the pipe behind fd (FIONREAD works on either end)."""
    (count,) = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))
    return int(count)


# -- (cat; cat; cat) | serviceparser -----------------------------------------------------


def cats_command(run: PipeRun, pipeline_fds: list[int], default: str) -> str:
    return cats_line(pipeline_fds, run.order or default, run.parser)


def cats_line(pipeline_fds: list[int], order: str, parser: str = PARSE) -> str:
    """`(cat <&5- 6<&-; cat <&6- 5<&-) | parser 5<&- 6<&-` ("sequential", or `&` for "shared"):
    each cat's input moved to its fd 0 and the others' closed, so that, as at the lecture's
    terminal, a cat holds its input as fd 0 alone and nothing else holds the cats' inputs."""

    def close_all_but(keep: int | None) -> str:
        return " ".join(f"{fd}<&-" for fd in pipeline_fds if fd != keep)

    separator = "; " if order == "sequential" else " & "
    cats = separator.join(f"cat <&{fd}- {close_all_but(fd)}" for fd in pipeline_fds)
    return f"({cats}{' &' if separator == ' & ' else ''}) | {parser} {close_all_but(None)}"


def the_pipe(sid: int) -> str | None:
    """The pipe the parser reads: its fd 0."""
    return next((pipe_of(h.fd0) for h in holders(sid) if h.name == "parse"), None)


def cats_holding(sid: int, pipe: str | None) -> list[Holder]:
    return [h for h in holders(sid) if h.name == "cat" and h.fd1 == pipe]


async def sequential(run: PipeRun) -> None:
    pipeline = Pipeline("", feeds=3)
    pipeline.command = cats_command(run, [pipeline.fd(i) for i in range(3)], "sequential")
    run.pipelines.append(pipeline)
    await pipeline.start()
    pipe: list[str] = []

    def parser_reads_a_pipe() -> tuple[bool, str]:
        found = the_pipe(pipeline.sid)
        pipe[:] = [found] if found else []
        return found is not None, f"the parser's fd 0: {found or 'not yet'}"

    await run.until("the parser reads a pipe", "fd 0 = pipe:[...]", parser_reads_a_pipe)
    seen: list[int] = []
    for cat in range(3):

        def one_cat() -> tuple[bool, str]:
            found = cats_holding(pipeline.sid, pipe[0])
            return len(found) == 1 and found[0].pid not in seen, f"cats with fd 1 = {pipe[0]}: {describe(found)}"

        await run.until(
            f"cat {cat + 1}'s turn: exactly one cat holds the pipe, a new one", "1 cat, not one seen before", one_cat
        )
        seen.append(cats_holding(pipeline.sid, pipe[0])[0].pid)
        await run.throughout(
            "and only that one, while it runs",
            "1 cat",
            lambda: (len(cats_holding(pipeline.sid, pipe[0])) == 1, describe(cats_holding(pipeline.sid, pipe[0]))),
        )
        if cat < 2:
            pipeline.feed(cat + 1, "discard\n")  # a line for the next cat: it is not reading yet
            early = await pipeline.line(run.timing.hold)
            run.record(
                f"a line typed for cat {cat + 2} waits: that cat has not started",
                "no answer",
                "no answer" if early is None else f"answered {early!r}",
                early is None,
            )
        pipeline.feed(cat, "discard\n")
        answer = await pipeline.line(run.timing.timeout)
        run.record(f"cat {cat + 1}'s line is answered", repr(ANSWER), repr(answer), answer == ANSWER)
        if cat < 2:
            pipeline.end(cat)  # ctrl-D: this cat ends, the next begins and reads its waiting line
            answer = await pipeline.line(run.timing.timeout)
            run.record(
                f"EOF ends cat {cat + 1}; cat {cat + 2} starts and reads the line that waited",
                repr(ANSWER),
                repr(answer),
                answer == ANSWER,
            )
    pipeline.end(2)
    await run.until(
        "after the third EOF the pipe has no writer: the parser sees EOF and exits",
        "nothing left running",
        lambda: (not alive_in_session(pipeline.sid), describe(holders(pipeline.sid))),
    )


# -- (cat & cat & cat &) | serviceparser -------------------------------------------------


@dataclass
class _Seen:
    """What a look saw, for the claims after it: the pipe the cats share, and the cats on it."""

    pipe: str | None = None
    cats: list[Holder] = field(default_factory=list)


async def shared(run: PipeRun) -> None:
    pipeline = Pipeline("", feeds=3)
    pipeline.command = cats_command(run, [pipeline.fd(i) for i in range(3)], "shared")
    run.pipelines.append(pipeline)
    await pipeline.start()
    seen = _Seen()

    def four_on_one_pipe() -> tuple[bool, str]:
        pipe = the_pipe(pipeline.sid)
        on_it = [h for h in holders(pipeline.sid) if pipe and (pipe in (h.fd0, h.fd1))]
        cats = [h for h in on_it if h.name == "cat" and h.fd1 == pipe]
        seen.pipe, seen.cats = pipe, cats
        return len(on_it) == 4 and len(cats) == 3, f"on {pipe or 'no pipe'}: {describe(on_it)}"

    await run.until(
        "four processes: three cats' fd 1 and the parser's fd 0 are the same pipe (one inode)",
        "3 x cat (fd 1) + parse (fd 0), one pipe:[inode]",
        four_on_one_pipe,
    )
    feeds = [f"pipe:[{os.fstat(end).st_ino}]" for end in pipeline.feed_ends]
    by_input = {c.fd0: c for c in seen.cats}  # the kernel's word on which cat reads which of our pipes
    cats = [by_input[feed] for feed in feeds if feed in by_input]
    run.record(
        "each cat reads its own input pipe (ours to feed and to end)",
        "3 cats, one on each of our pipes",
        describe(cats),
        len(cats) == 3,
    )
    before = [written(c.pid) or 0 for c in cats]
    lines = ["discard", "echo", "ssh"]
    for number, line in enumerate(lines):
        pipeline.feed(number, f"{line}\n")
    answers = [await pipeline.line(run.timing.timeout) for _ in lines]
    expected = sorted(reply(line.encode(), load_db()) or "" for line in lines)
    run.record(
        "a line to each cat: each is read by the one reader, the parser, exactly once",
        f"{expected} (in any order)",
        f"{answers}",
        sorted(a or "" for a in answers) == expected and not await pipeline.line(run.timing.hold),
    )
    wrote = [(written(c.pid) or 0) - b for c, b in zip(cats, before, strict=True)]
    run.record(
        "the kernel knows which cat wrote what (/proc/PID/io); the parser's input does not: "
        "one fd, one pipe, bytes without a sender",
        f"each cat wrote its own line: {[len(x) + 1 for x in lines]} bytes",
        f"cats {[c.pid for c in cats]} wrote {wrote} bytes; the parser has only fd 0 = {seen.pipe}",
        wrote == [len(x) + 1 for x in lines],
    )
    pipeline.end(0)
    pipeline.end(1)
    await run.until(
        "two cats end (EOF); the pipe still has a writer, so the parser goes on",
        "1 cat on the pipe, the parser alive",
        lambda: (
            len(cats_holding(pipeline.sid, seen.pipe)) == 1 and any(h.name == "parse" for h in holders(pipeline.sid)),
            describe(holders(pipeline.sid)),
        ),
    )
    pipeline.feed(2, "discard\n")
    answer = await pipeline.line(run.timing.timeout)
    run.record("the last cat is still heard", repr(ANSWER), repr(answer), answer == ANSWER)
    pipeline.end(2)
    await run.until(
        "when the last writer closes, the parser sees EOF and exits",
        "nothing left running",
        lambda: (not alive_in_session(pipeline.sid), describe(holders(pipeline.sid))),
    )


PIPE_SCENARIOS = (
    PipeScenario(
        "pipe-streaming",
        "the parser streams: `| head -3` ends at once; `| sort` says nothing until the input ends",
        "yes | serviceparser | sort",
        streaming,
    ),
    PipeScenario(
        "pipe-sequential",
        "(cat; cat; cat) | parser: one cat at a time holds the pipe; each EOF hands it on",
        "(cat; cat; cat) | serviceparser",
        sequential,
    ),
    PipeScenario(
        "pipe-shared",
        "(cat & cat & cat &) | parser: three writers on one pipe; nobody can tell whose line it is",
        "(cat& cat& cat&) | serviceparser",
        shared,
    ),
)
