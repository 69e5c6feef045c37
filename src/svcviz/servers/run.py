"""`svcviz serve MODEL`: run one model as this process until SIGTERM, SIGINT or SIGHUP.

No Textual here: a forked child copies its parent, so a small server process matters.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from svcviz.servers.config import ServerConfig, ServerError
from svcviz.servers.limits import limit_fds, limit_memory, stop_children
from svcviz.servers.registry import BY_NAME

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stop(BaseException):
    """SIGTERM, SIGINT or SIGHUP arrived: unwind the model and clean up."""


class StopOnce:
    """The signal handler: the first stop signal unwinds the model, any later one is a
    no-op. A second Ctrl+C, or a closing terminal's second SIGHUP, must not interrupt the
    cleanup and leave the children behind."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            raise Stop()


def serve(config: ServerConfig) -> int:
    """Run the model; 0 when stopped by a signal or done, 2 on a problem the user can fix."""
    once = StopOnce()
    for sig in STOP_SIGNALS:
        signal.signal(sig, once)
    try:
        config.check()
        model = BY_NAME.get(config.model)
        if model is None:
            raise ServerError(f"unknown model {config.model!r} (see `svcviz models`)")
        module = model.module
        if config.max_fds is not None:
            limit_fds(config.max_fds)
        if config.max_memory is not None:
            limit_memory(config.max_memory)
        module.serve(config)
        return 0
    except Stop:
        return 0
    except ServerError as exc:
        once.stopping = True  # first, before any call: a signal now must not cut the line short
        print(f"svcviz serve: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        once.stopping = True  # first, before any call: from here on a stop signal changes nothing
        stop_children()
