"""The lecture's pipelines, run for the pipeline screen (`|`): started, fed, steered, ended.

Each runs as the pipe scenarios run it (scenarios/pipes.Pipeline: bash in a session of its
own, a guard that kills it should svcviz die first); the cats read pipes svcviz feeds, one
each, so a key can type a line into one cat or give it its ctrl-D. What comes out of the
last stage is counted here, and its last lines kept for the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from dataclasses import dataclass

from svcviz.observe.pipes import Member, PipelineView
from svcviz.scenarios.pipes import PARSE, Pipeline, alive_in_session, cats_line

CATS = 3
LINES = ("discard", "echo", "ssh")  # cat N's line: each answer tells whose line it was
SHOWN_LINES = 3
YES_LIMIT = 60.0  # s: then svcviz ends yes itself, as sort would keep all it reads


@dataclass(frozen=True)
class Recipe:
    key: str
    shown: str  # the lecture's command line
    command: str = ""  # for bash, when it has no cats
    cats: str = ""  # "sequential", "shared": the cats' form

    @property
    def has_yes(self) -> bool:
        return self.shown.startswith("yes")


RECIPES = (
    Recipe("1", "yes discard | svcviz parse | head -3", f"yes discard | {PARSE} | head -3"),
    Recipe("2", "yes discard | svcviz parse | sort", f"yes discard | {PARSE} | sort"),
    Recipe("3", "(cat; cat; cat) | svcviz parse", cats="sequential"),
    Recipe("4", "(cat & cat & cat &) | svcviz parse", cats="shared"),
)


def is_parser(member: Member) -> bool:
    """`python -m svcviz parse`, and not the shell whose command line ends with it."""
    return member.name != "bash" and member.command.split()[-2:] == ["svcviz", "parse"]


class RunningPipeline:
    """One recipe, running: its processes, its feeds, what came out of it."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.pipeline = Pipeline("", feeds=CATS if recipe.cats else 0)
        self.pipeline.command = (
            cats_line([self.pipeline.fd(i) for i in range(CATS)], recipe.cats) if recipe.cats else recipe.command
        )
        self.feeds: dict[int, int] = {}  # the inode of each cat's input pipe -> the cat (0-based)
        self.lines_out = 0
        self.last_lines: deque[str] = deque(maxlen=SHOWN_LINES)
        self.began = 0.0
        self.input_ended = False
        self.parser_stopped = False  # by the z key
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.feeds = {os.fstat(end).st_ino: cat for cat, end in enumerate(self.pipeline.feed_ends)}
        await self.pipeline.start()
        self.began = time.monotonic()
        self._reader = asyncio.create_task(self._read_out())

    async def _read_out(self) -> None:
        """Counts the lines out as they come: sort's 400,000 after a minute are read in chunks."""
        stdout = self.pipeline.started.stdout
        assert stdout is not None  # Pipeline.start() asked for a pipe
        partial = b""
        while chunk := await stdout.read(65536):
            self.lines_out += chunk.count(b"\n")
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()[-200:]
            self.last_lines.extend(line.decode(errors="replace")[:200] for line in lines[-SHOWN_LINES:])

    @property
    def sid(self) -> int:
        return self.pipeline.sid

    @property
    def returncode(self) -> int | None:
        """The shell's exit status (the last stage's), None while it runs."""
        return self.pipeline.proc.returncode if self.pipeline.proc else None

    def pids(self) -> list[int]:
        return alive_in_session(self.sid)

    def feed(self, cat: int) -> str:
        """A line into cat's input, as typed at its terminal; what happened, in words."""
        if not self.recipe.cats:
            return "this pipeline has no cats: 3 and 4 have"
        if self.pipeline.feed_ends[cat] < 0:
            return f"cat {cat + 1}'s input is closed (it had its EOF)"
        self.pipeline.feed(cat, LINES[cat] + "\n")
        return f"{LINES[cat]!r} typed into cat {cat + 1}"

    def end_cat(self, cat: int) -> str:
        if not self.recipe.cats:
            return "this pipeline has no cats: 3 and 4 have"
        self.pipeline.end(cat)
        return f"EOF for cat {cat + 1} (its ctrl-D)"

    def end_input(self, view: PipelineView) -> str:
        """The cats' EOF, or yes ended (SIGTERM): what the pipeline reads ends."""
        self.input_ended = True
        if self.recipe.cats:
            for cat in range(CATS):
                self.pipeline.end(cat)
            return "EOF for every cat"
        yes = [m.pid for m in view.members if m.name == "yes"]
        for pid in yes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        return f"yes {yes[0]} ended (SIGTERM): the parser will see EOF" if yes else "yes has ended already"

    def past_limit(self) -> bool:
        """yes | ... | sort has run long enough: sort keeps every line it reads."""
        return (
            self.recipe.has_yes
            and not self.input_ended
            and self.returncode is None
            and time.monotonic() - self.began > YES_LIMIT
        )

    def stop_or_continue_parser(self, view: PipelineView) -> str:
        """SIGSTOP the parser (its input pipe fills), or SIGCONT it: the opposite of what the
        key did last, not of the state seen (a stop lands only when the parser next runs, so
        a second press at once would see it running yet)."""
        parser = next((m for m in view.members if is_parser(m)), None)
        if parser is None:
            return "no parser is running"
        self.parser_stopped = not self.parser_stopped
        with contextlib.suppress(ProcessLookupError):
            os.kill(parser.pid, signal.SIGSTOP if self.parser_stopped else signal.SIGCONT)
        return f"parser {parser.pid} " + (
            "stopped (SIGSTOP): its input fills" if self.parser_stopped else "continued (SIGCONT)"
        )

    @property
    def over(self) -> bool:
        """The shell has exited and nothing of its session is left."""
        return self.returncode is not None and not self.pids()

    def kill_now(self) -> None:
        self.pipeline.kill_now()

    async def close(self) -> None:
        """Kill what is left, dismiss the guard, and wait for all of it (more than once is fine)."""
        await self.pipeline.close()
        if self._reader is not None:
            await self._reader
