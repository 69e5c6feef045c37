"""`svcviz` with its key-to-frame times written down: what benchmarks/dashboard.py runs in
tmux to split a key's latency into svcviz's own part and the terminal's.

    SVCVIZ_KEY_TIMES=FILE python benchmarks/timed_app.py watch --port P

For each key press: from the moment Textual hands the app the key event to the moment the
next frame is written to the terminal (App._display), in wall and CPU milliseconds, one
JSON line each in FILE. What comes before (tmux delivering the key, the app reading it)
and after (tmux parsing the frame, capture-pane seeing it) is not in it.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

# As cli.main() does for a dashboard, before Textual is imported (here it is imported first,
# to patch its App): the cyclic collector is off until the first frame.
gc.disable()

from textual import events  # noqa: E402
from textual.app import App  # noqa: E402

from svcviz.cli import main  # noqa: E402

pressed: list[tuple[float, float]] = []  # (wall, cpu) of the key awaiting its frame
out = open(os.environ["SVCVIZ_KEY_TIMES"], "a", buffering=1)  # open for the app's life
display = App._display
on_event = App.on_event


def timed_display(self: App[object], screen: object, renderable: object) -> None:
    display(self, screen, renderable)  # type: ignore[arg-type]
    if pressed and renderable is not None:
        wall, cpu = pressed.pop()
        out.write(
            json.dumps({"wall_ms": (time.monotonic() - wall) * 1000, "cpu_ms": (time.process_time() - cpu) * 1000})
            + "\n"
        )


async def timed_on_event(self: App[object], event: events.Event) -> None:
    if isinstance(event, events.Key) and not pressed:
        pressed.append((time.monotonic(), time.process_time()))
    await on_event(self, event)


App._display = timed_display  # type: ignore[method-assign,assignment]
App.on_event = timed_on_event  # type: ignore[method-assign,assignment]
sys.argv = ["svcviz", *sys.argv[1:]]
sys.exit(main())
