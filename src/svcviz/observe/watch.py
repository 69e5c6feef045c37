"""`svcviz watch (--port P | --pid PID) --once [--json]`: one snapshot of any server.

The observer is made first, so a bad target is one line on stderr and exit 2. Without
--once, cli.py opens the dashboard instead: the observer knows nothing of the TUI.
"""

from __future__ import annotations

import json
import sys

from svcviz.observe.export import to_json
from svcviz.observe.observer import ObserveError, Observer


def attach(
    *, pid: int | None, port: int | None, addr: tuple[str, int] | None = None, netns: str | None = None
) -> Observer | None:
    """The observer of the target; None, said in one line on stderr, when there is none."""
    try:
        observer = Observer(pid=pid, port=port, addr=addr, netns=netns)
    except ObserveError as exc:
        print(f"svcviz watch: {exc}", file=sys.stderr)
        return None
    if observer.notice:  # e.g. a thread id resolved to its process
        print(f"svcviz watch: {observer.notice}", file=sys.stderr)
    return observer


def print_once(observer: Observer, as_json: bool) -> int:
    """One snapshot on stdout (rich, or JSON); closes the observer."""
    try:
        snapshot = observer.sample()
    finally:
        observer.close()
    if as_json:
        json.dump(to_json(snapshot), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        from svcviz.observe.render import render

        Console().print(render(snapshot))
    return 0
