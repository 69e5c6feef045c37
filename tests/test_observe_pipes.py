"""observe/pipes on the lecture's real pipelines: the same inode in the writer's fd 1 and the
reader's fd 0, bytes waiting from the kernel (FIONREAD), and a probe that never takes a
byte; and the guard that kills a pipeline its svcviz died without closing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager

from svcviz.observe.pipes import PipelineView, look
from svcviz.scenarios.pipes import PARSE, Pipeline, alive_in_session, cats_line


@asynccontextmanager
async def running(command: str = "", feeds: int = 0):
    pipeline = Pipeline(command, feeds=feeds)
    if feeds:
        pipeline.command = cats_line([pipeline.fd(i) for i in range(feeds)], "shared")
    try:
        await pipeline.start()
        yield pipeline
    finally:
        await pipeline.close()


async def until(pipeline: Pipeline, holds, what: str, timeout: float = 15.0) -> PipelineView:
    deadline = time.monotonic() + timeout
    while True:
        view = look(alive_in_session(pipeline.sid))
        if holds(view):
            return view
        assert time.monotonic() < deadline, f"never: {what}; last seen {view}"
        await asyncio.sleep(0.05)


def by_name(view: PipelineView, name: str):
    return [m for m in view.members if m.name == name]


def parser(view: PipelineView):
    found = [m for m in view.members if m.name != "bash" and m.command.endswith("svcviz parse")]
    return found[0] if len(found) == 1 else None


async def test_yes_parse_sort_one_pipe_each_and_a_full_one_when_the_parser_stops():
    async with running(f"yes discard | {PARSE} | sort") as pipeline:
        view = await until(
            pipeline, lambda v: by_name(v, "yes") and by_name(v, "sort") and parser(v), "yes, the parser and sort"
        )
        yes, parse, sort = by_name(view, "yes")[0], parser(view), by_name(view, "sort")[0]
        first, second = yes.ends[1].pipe, parse.ends[1].pipe
        assert first is not None and second is not None and first != second
        assert (yes.ends[1].writes, parse.ends[0].pipe, parse.ends[0].writes) == (True, first, False)
        assert (parse.ends[1].writes, sort.ends[0].pipe, sort.ends[0].writes) == (True, second, False)
        pipes = {pipe.inode: pipe for pipe in view.pipes}
        assert pipes[first].writers == ((yes.pid, 1),) and pipes[first].readers == ((parse.pid, 0),)
        assert pipes[second].writers == ((parse.pid, 1),) and pipes[second].readers == ((sort.pid, 0),)

        os.kill(parse.pid, signal.SIGSTOP)  # nobody reads yes's pipe now: it fills to its size
        view = await until(
            pipeline,
            lambda v: parser(v).state == "T" and next(p for p in v.pipes if p.inode == first).waiting == 65536,
            "yes's pipe full while the parser is stopped",
        )
        assert next(p for p in view.pipes if p.inode == first).size == 65536  # Linux's default pipe size
        view = await until(pipeline, lambda v: by_name(v, "yes")[0].call == "write(1)", "yes blocked writing fd 1")
        await asyncio.sleep(0.3)
        later = look(alive_in_session(pipeline.sid))  # full, and yes writes nothing more: blocked, not slow
        assert next(p for p in later.pipes if p.inode == first).waiting == 65536
        assert by_name(later, "yes")[0].io[1] == by_name(view, "yes")[0].io[1]
        os.kill(parse.pid, signal.SIGCONT)
        await until(
            pipeline, lambda v: by_name(v, "yes")[0].io[1] > by_name(later, "yes")[0].io[1], "yes writing again"
        )


async def test_three_cats_one_pipe_and_a_line_waiting_in_it_not_taken_by_the_probe():
    async with running(feeds=3) as pipeline:

        def settled(v: PipelineView) -> bool:
            """The subshell that started the cats has exited, and the shell has closed its own
            copy of the pipe it made (fd 3, until it has forked the parser: a fresh-clone run
            once looked in between)."""
            shells, parse = by_name(v, "bash"), parser(v)
            if len(by_name(v, "cat")) != 3 or parse is None or len(shells) != 1:
                return False
            shared = next((p for p in v.pipes if p.inode == parse.ends[0].pipe), None)
            return shared is not None and all(pid != shells[0].pid for pid, _ in (*shared.readers, *shared.writers))

        view = await until(pipeline, settled, "three cats, the parser and the shell alone")
        cats, parse = by_name(view, "cat"), parser(view)
        shared = parse.ends[0].pipe
        assert shared is not None and {cat.ends[1].pipe for cat in cats} == {shared}
        pipe = next(p for p in view.pipes if p.inode == shared)
        assert sorted(pipe.writers) == sorted((cat.pid, 1) for cat in cats)
        assert pipe.readers == ((parse.pid, 0),)
        assert all(cat.ends[0].pipe not in (None, shared) for cat in cats)  # each cat reads its own input

        os.kill(parse.pid, signal.SIGSTOP)
        await until(pipeline, lambda v: parser(v).state == "T", "the parser stopped")
        cat_of_feed = {cat.ends[0].pipe: cat.pid for cat in cats}
        second = cat_of_feed[os.fstat(pipeline.feed_ends[1]).st_ino]
        before = {m.pid: m.io for m in look(alive_in_session(pipeline.sid)).members}
        pipeline.feed(1, "discard\n")
        view = await until(
            pipeline, lambda v: next(p for p in v.pipes if p.inode == shared).waiting == 8, "8 bytes waiting"
        )
        await asyncio.sleep(0.3)
        view = look(alive_in_session(pipeline.sid))  # looked again and again: still all there
        assert next(p for p in view.pipes if p.inode == shared).waiting == 8
        wrote = {m.pid: m.io[1] - before[m.pid][1] for m in view.members if m.name == "cat"}
        assert wrote == {cat.pid: 8 if cat.pid == second else 0 for cat in cats}  # the kernel knows whose it was

        os.kill(parse.pid, signal.SIGCONT)
        assert await pipeline.line(10) == "discard,9"  # the parser got the whole line: the probe took nothing
        await until(pipeline, lambda v: next(p for p in v.pipes if p.inode == shared).waiting == 0, "the pipe drained")


GUARDED = """
import asyncio, sys
from svcviz.scenarios.pipes import Pipeline

async def main():
    pipeline = Pipeline("yes discard > /dev/null")
    await pipeline.start()
    print(pipeline.sid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_pipeline_dies_with_the_svcviz_that_started_it():
    """yes never ends by itself: SIGKILL its starter (no cleanup runs), and the guard kills it."""
    starter = subprocess.Popen([sys.executable, "-c", GUARDED], stdout=subprocess.PIPE, text=True)
    sid = None
    try:
        sid = int(starter.stdout.readline())
        deadline = time.monotonic() + 5
        while not any(m.name == "yes" for m in look(alive_in_session(sid)).members):
            assert time.monotonic() < deadline, "yes never started"
            time.sleep(0.05)
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 5
        while alive_in_session(sid):
            assert time.monotonic() < deadline, f"the pipeline outlived its svcviz: {alive_in_session(sid)}"
            time.sleep(0.05)
    finally:
        starter.kill()
        starter.wait()
        if sid is not None:
            try:
                os.killpg(sid, signal.SIGKILL)
            except ProcessLookupError:
                pass
