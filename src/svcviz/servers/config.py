"""What a server model is told to do: the options of `svcviz serve`, checked once."""

from __future__ import annotations

import ipaddress
from argparse import Namespace
from typing import NamedTuple

from svcviz.servers.registry import model_of

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6168
DEFAULT_BACKLOG = 8
DEFAULT_CAP_PROCS = 256
DEFAULT_CAP_THREADS = 512
DEFAULT_WORKERS = 4
SIGCHLD_MODES = ("default", "ignore", "reap")


class ServerError(Exception):
    """A problem the user can fix (busy port, bad option): one line, exit 2."""


def check_host(host: str) -> str:
    """The one rule for every --host (serve, the dashboard, blast): an IP address or a name
    that can be looked up. Python's getaddrinfo() encodes a name with IDNA first, and that
    raises UnicodeError, not gaierror, for an empty label (`..`) or one over 63
    characters: so such names are refused here, saying why, before anything runs."""
    if not host:
        raise ServerError("--host '': empty (0.0.0.0 means every address)")
    if not host.isprintable():
        raise ServerError(f"--host {host!r}: not a host name (control characters)")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if len(host) > 253:
        raise ServerError(f"--host {host[:20]!r}...: not a host name (longer than 253 characters)")
    for label in host.removesuffix(".").split("."):
        if not 1 <= len(label) <= 63:
            raise ServerError(f"--host {host!r}: not a host name (each part between dots must be 1..63 characters)")
    try:
        host.encode("idna")
    except UnicodeError:
        raise ServerError(f"--host {host!r}: not a host name") from None
    return host


class ServerConfig(NamedTuple):
    model: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    backlog: int = DEFAULT_BACKLOG
    delay: float = 0.0
    max_fds: int | None = None
    cap_procs: int = DEFAULT_CAP_PROCS
    cap_threads: int = DEFAULT_CAP_THREADS
    sigchld: str = "default"
    close_fd: bool = True
    max_children: int | None = None
    workers: int = DEFAULT_WORKERS
    max_memory: int | None = None  # MB

    @classmethod
    def from_args(cls, model: str, args: Namespace) -> ServerConfig:
        """The config the server options of `svcviz serve` (or of the dashboard) ask for."""
        return cls(
            model=model,
            host=args.host,
            port=DEFAULT_PORT if args.port is None else args.port,
            backlog=args.backlog,
            delay=args.delay,
            max_fds=args.max_fds,
            cap_procs=args.cap_procs,
            cap_threads=args.cap_threads,
            sigchld=args.sigchld,
            close_fd=args.close_fd,
            max_children=args.max_children,
            workers=args.workers,
            max_memory=args.max_memory,
        )

    def check(self) -> None:
        """Raise ServerError naming the first option that makes no sense."""
        check_host(self.host)
        if not 0 <= self.port <= 65535:
            raise ServerError(f"--port {self.port}: must be 0..65535")
        if not 0 <= self.backlog <= 65535:
            raise ServerError(f"--backlog {self.backlog}: must be 0..65535")
        if not 0 <= self.delay <= 3600:
            raise ServerError(f"--delay {self.delay}: must be 0..3600 seconds")
        if self.max_fds is not None and not 8 <= self.max_fds <= 1_048_576:
            raise ServerError(f"--max-fds {self.max_fds}: must be 8..1048576")
        if not 1 <= self.cap_procs <= 4096:
            raise ServerError(f"--cap-procs {self.cap_procs}: must be 1..4096")
        if not 1 <= self.cap_threads <= 8192:
            raise ServerError(f"--cap-threads {self.cap_threads}: must be 1..8192")
        if self.sigchld not in SIGCHLD_MODES:
            raise ServerError(f"--sigchld {self.sigchld}: must be one of {', '.join(SIGCHLD_MODES)}")
        if self.max_children is not None and self.max_children < 1:
            raise ServerError(f"--max-children {self.max_children}: must be at least 1")
        if self.workers < 1:
            raise ServerError(f"--workers {self.workers}: must be at least 1")
        model = model_of(self.model)
        pool = model is not None and model.has_pool
        threaded = model is not None and model.threaded
        if pool and not threaded and self.workers + 1 > self.cap_procs:
            raise ServerError(f"--workers {self.workers}: the process cap is {self.cap_procs} (--cap-procs)")
        if pool and threaded and self.workers + 1 > self.cap_threads:
            raise ServerError(f"--workers {self.workers}: the thread cap is {self.cap_threads} (--cap-threads)")
        if self.max_memory is not None and not 16 <= self.max_memory <= 1_048_576:
            raise ServerError(f"--max-memory {self.max_memory}: must be 16..1048576 MB")

    def as_args(self) -> list[str]:
        """The `svcviz serve` command-line arguments that recreate this config."""
        args = [
            self.model,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--backlog",
            str(self.backlog),
            "--delay",
            str(self.delay),
            "--cap-procs",
            str(self.cap_procs),
            "--cap-threads",
            str(self.cap_threads),
            "--sigchld",
            self.sigchld,
            "--close-fd" if self.close_fd else "--leak-fd",
            "--workers",
            str(self.workers),
        ]
        for flag, value in (
            ("--max-fds", self.max_fds),
            ("--max-children", self.max_children),
            ("--max-memory", self.max_memory),
        ):
            if value is not None:
                args += [flag, str(value)]
        return args
