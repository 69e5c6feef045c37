"""`svcviz replay FILE [--at SECONDS [--json | --svg OUT]]`: a recording read back.

--at prints the snapshot shown that many seconds after the first sample, as `svcviz watch
--once` does (rich, or the same JSON with --json), so a script can check a recording;
--svg writes that sample's picture (svcviz.picture) to OUT instead, for a handout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from svcviz.observe.export import to_json
from svcviz.picture import layout, picture_to_svg
from svcviz.record.format import FormatError
from svcviz.record.reader import Recording

SVG_SIZE = (118, 30)  # cells: the picture of a 120x36 dashboard


def main(args, open_dashboard: Callable[[Recording], int]) -> int:
    """--at: one snapshot printed; else open_dashboard(recording) (the TUI, which this
    layer may not import: cli.py hands it in)."""
    try:
        recording = Recording(args.file)
        if args.at is None:
            if args.json:
                raise FormatError("--json needs --at SECONDS (one snapshot as JSON)")
            if getattr(args, "svg", None):
                raise FormatError("--svg needs --at SECONDS (the picture of one sample)")
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
