"""`svcviz serve MODEL`: run one model as this process until SIGTERM or SIGINT.

No Textual here: a forked child copies its parent, so a small server process matters.
"""

from __future__ import annotations

import signal
import sys

from svcviz.servers.config import ServerConfig, ServerError
from svcviz.servers.limits import limit_fds, limit_memory, stop_children
from svcviz.servers.registry import BY_NAME


class Stop(BaseException):
    """SIGTERM or SIGINT arrived: unwind the model and clean up."""


def _stop(signum, frame) -> None:
    raise Stop()


def serve(config: ServerConfig) -> int:
    """Run the model; 0 when stopped by a signal or done, 2 on a problem the user can fix."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, _stop)
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
        print(f"svcviz serve: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        # Ignore further signals while the children go: a second Ctrl+C must not leave
        # them behind.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_children()
