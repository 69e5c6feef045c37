"""`svcviz replay FILE --svg DIR [--every SECONDS | --at-events]`: a handout of a recording.

The replay's own dashboard runs headless (Textual's run_test, 120x36); the player is moved
to each step and the screen saved as an SVG (save_screenshot), then an index.html shows
them in order, each under the events that led to it: for a handout or a slide deck.
"""

from __future__ import annotations

import asyncio
import bisect
import glob
import html
import os
import time

from svcviz.lab import LabUpdate
from svcviz.record.player import ReplayLab
from svcviz.record.reader import Recording
from svcviz.tui.replay import ReplayApp

SIZE = (120, 36)
DRAW_TIMEOUT = 10.0


def steps_every(lab: ReplayLab, every: float) -> list[int]:
    """The samples on screen at 0, every, 2*every ... seconds (each the last at or before
    its time), once each."""
    elapsed = [lab.elapsed(i) for i in range(len(lab.samples))]
    steps: list[int] = []
    for tick in range(int(lab.duration / every + 1e-9) + 1):
        index = bisect.bisect_right(elapsed, tick * every + 1e-6) - 1
        if not steps or steps[-1] != index:
            steps.append(index)
    return steps


def steps_at_events(lab: ReplayLab) -> list[int]:
    """The first sample, then each one that brought events."""
    return sorted({0, *lab.event_positions()})


async def _shoot(lab: ReplayLab, steps: list[int], directory: str) -> list[str]:
    app = ReplayApp(lab)
    names = []
    async with app.run_test(size=SIZE) as pilot:
        for number, index in enumerate(steps, 1):
            lab.seek(index)
            deadline = time.monotonic() + DRAW_TIMEOUT
            while app.index != index:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replay did not draw sample {index}")
                await pilot.pause(0.01)
            await pilot.pause()
            names.append(f"step-{number:03d}.svg")
            app.save_screenshot(filename=names[-1], path=directory)
    return names


def _caption(lab: ReplayLab, previous: int, index: int) -> str:
    """What led to this step: the events of the samples since the previous step."""
    shown: LabUpdate = lab.samples[index]
    events = [e for update in lab.samples[previous + 1 : index + 1] for e in update.events]
    lines = "".join(
        f"<li><code>{html.escape(time.strftime('%H:%M:%S', time.localtime(e.time)))}</code> "
        f"<span class='{html.escape(e.kind)}'>{html.escape(e.text)}</span></li>"
        for e in events
    )
    head = (
        f"+{lab.elapsed(index):.1f} s · {html.escape(shown.config.model)} · {len(shown.snapshot.processes)} processes"
    )
    return f"<p class='when'>{head}</p>" + (f"<ul>{lines}</ul>" if lines else "<p class='quiet'>no new events</p>")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>svcviz handout: {title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 1em auto; background: #fafafa; }}
figure {{ margin: 2em 0; page-break-inside: avoid; }}
figure img {{ width: 100%; border: 1px solid #ccc; }}
.when {{ font-weight: bold; margin: 0.2em 0; }}
ul {{ margin: 0.2em 0; }} .quiet {{ color: #888; margin: 0.2em 0; }}
.exit, .dropped, .error, .cap {{ color: #b00; }} .fork, .accept {{ color: #070; }} .reaped {{ color: #066; }}
</style></head><body>
<h1>svcviz handout</h1>
<p>{count} steps of <code>{title}</code> ({duration:.1f} s recorded), in order; under each, the events
that led to it.</p>
{figures}
</body></html>
"""


def write_handout(recording: Recording, directory: str, every: float | None = None) -> list[tuple[str, int]]:
    """One SVG per step in `directory` and its index.html; each SVG's name and the index of
    the sample it shows, in order."""
    lab = ReplayLab(recording, playing=False)
    steps = steps_every(lab, every) if every else steps_at_events(lab)
    os.makedirs(directory, exist_ok=True)
    for old in glob.glob(os.path.join(directory, "step-*.svg")):
        os.remove(old)  # a handout made before: its extra pages would not belong to this one
    names = asyncio.run(_shoot(lab, steps, directory))
    figures = "\n".join(
        f"<figure><figcaption>{_caption(lab, previous, index)}</figcaption>"
        f"<img src='{name}' alt='step {number}'></figure>"
        for number, (name, index, previous) in enumerate(zip(names, steps, [-1, *steps[:-1]], strict=True), 1)
    )
    page = PAGE.format(
        title=html.escape(os.path.basename(recording.path)), count=len(names), duration=lab.duration, figures=figures
    )
    with open(os.path.join(directory, "index.html"), "w", encoding="utf-8") as f:
        f.write(page)
    return list(zip(names, steps, strict=True))
