"""`svcviz replay FILE [--at SECONDS [--json | --svg OUT]] [--svg DIR [--every S | --at-events]]`.

--at prints the snapshot shown that many seconds after the first sample, as `svcviz watch
--once` does (rich, or the same JSON with --json), so a script can check a recording;
--svg writes that sample's picture (svcviz.picture) to OUT instead, for a handout. --svg
without --at makes a handout of the whole recording: the dashboard drawn at each step into
DIR, and an index.html.
"""

from __future__ import annotations

import json
import os
import sys
from argparse import Namespace
from collections.abc import Callable

from svcviz.observe.export import to_json
from svcviz.picture import layout, picture_to_svg
from svcviz.record.format import FormatError
from svcviz.record.reader import Recording

SVG_SIZE = (118, 30)  # cells: the picture of a 120x36 dashboard


def main(
    args: Namespace,
    open_dashboard: Callable[[Recording], int],
    make_handout: Callable[[Recording, str, float | None], list[tuple[str, int]]],
) -> int:
    """--at: one snapshot printed (or its picture); --svg alone: make_handout(recording,
    dir, every); else open_dashboard(recording) (both are the TUI, which this layer may not
    import: cli.py hands them in)."""
    try:
        svg = getattr(args, "svg", None)
        every = getattr(args, "every", None)
        handout = svg is not None and args.at is None
        if not handout and (every is not None or getattr(args, "at_events", False)):
            raise FormatError("--every and --at-events choose the steps of a handout: they need --svg DIR (no --at)")
        if handout and args.json:
            raise FormatError("--svg DIR makes a handout of the whole recording: --json needs --at SECONDS")
        if every is not None and every <= 0:
            raise FormatError("--every needs a number of seconds above 0")
        recording = Recording(args.file)
        if handout:
            assert svg is not None  # a handout is --svg DIR
            if os.path.exists(svg) and not os.path.isdir(svg):
                raise FormatError(f"--svg {svg}: not a directory (a handout's pages go in one; --at S for one picture)")
            try:
                pages = make_handout(recording, svg, every)
            except OSError as exc:
                raise FormatError(f"--svg {svg}: {exc.strerror or exc}") from None
            print(f"svcviz replay: {len(pages)} steps in {os.path.join(svg, 'index.html')}")
            return 0
        if args.at is None:
            if args.json:
                raise FormatError("--json needs --at SECONDS (one snapshot as JSON)")
            return open_dashboard(recording)
        duration = recording.duration()
        if args.at > duration + 1e-3:  # the times printed to a person are to the millisecond
            raise FormatError(f"--at {args.at:g}: the recording is {duration:.1f} s long")
        update = recording.at(args.at)
    except FormatError as exc:
        print(f"svcviz replay: {exc}", file=sys.stderr)
        return 2
    if recording.truncated:
        print(f"svcviz replay: {args.file} was cut short; read up to its last whole sample", file=sys.stderr)
    if getattr(args, "svg", None):
        picture = layout(update.snapshot, update.clients, *SVG_SIZE, update.config.model)
        try:
            with open(args.svg, "w") as out:
                out.write(picture_to_svg(picture, f"svcviz: {update.config.model} at {args.at:g} s"))
        except OSError as exc:
            print(f"svcviz replay: cannot write {args.svg}: {exc.strerror}", file=sys.stderr)
            return 2
        return 0
    if args.json:
        json.dump(to_json(update.snapshot), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        from svcviz.observe.render import render

        Console().print(render(update.snapshot))
    return 0
