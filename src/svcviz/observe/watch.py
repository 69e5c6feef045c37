"""`svcviz watch (--port P | --pid PID) [--once] [--json]`: attach to any server.

The observer is made first, so a bad target is one line on stderr and exit 2. --once prints
one snapshot (rich, or JSON with --json); otherwise the dashboard takes over in watch mode.
"""

from __future__ import annotations

import json
import sys

from svcviz.observe.export import to_json
from svcviz.observe.observer import ObserveError, Observer


def main(args) -> int:
    try:
        observer = Observer(pid=args.pid, port=args.port)
    except ObserveError as exc:
        print(f"svcviz watch: {exc}", file=sys.stderr)
        return 2
    if observer.notice:
        print(f"svcviz watch: {observer.notice}", file=sys.stderr)
        args.pid = observer.root_pid
    if args.json and not args.once:
        observer.close()
        print("svcviz watch: --json needs --once (one snapshot as JSON)", file=sys.stderr)
        return 2
    if args.once and getattr(args, "record", None):
        observer.close()
        print("svcviz watch: --record records the dashboard: not with --once", file=sys.stderr)
        return 2
    if not args.once:
        observer.close()  # the dashboard makes its own, in its lab
        from svcviz.tui.app import watch_main

        return watch_main(args)
    try:
        snapshot = observer.sample()
    finally:
        observer.close()
    if args.json:
        json.dump(to_json(snapshot), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        from svcviz.observe.render import render

        Console().print(render(snapshot))
    return 0
