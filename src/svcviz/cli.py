"""Argument parsing and dispatch only: each command lives in its own module."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from svcviz.servers.config import (
    DEFAULT_BACKLOG,
    DEFAULT_CAP_PROCS,
    DEFAULT_CAP_THREADS,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WORKERS,
    SIGCHLD_MODES,
    ServerConfig,
    ServerError,
    check_host,
)
from svcviz.servers.registry import MODELS, NAMES

if TYPE_CHECKING:
    from svcviz.record.reader import Recording


class Parser(argparse.ArgumentParser):
    """Bad arguments: one clear line on stderr, exit 2 (argparse's usage block is noise)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (try --help)\n")

    def _get_formatter(self) -> argparse.HelpFormatter:
        """argparse's, without its import of shutil (and with it bz2, lzma, zlib) for the
        terminal width, done on every add_argument: a one-shot `svcviz watch --once` paid
        more for that import than for its sample."""
        # typeshed's _FormatterClass names only prog; formatter_class is argparse's default
        # HelpFormatter here (no parser is given another), which takes width.
        return self.formatter_class(prog=self.prog, width=_columns() - 2)  # type: ignore[call-arg]


def _columns() -> int:
    """What shutil.get_terminal_size() tells argparse: $COLUMNS, the terminal's width, or 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        try:
            stdout = sys.__stdout__  # None when Python started without one
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout is not None else 0
        except (ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0..65535)")
    return value


def _host(text: str) -> str:
    try:
        return check_host(text)
    except ServerError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--host ")) from None


def _addr(text: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT -> (host, port): a listener's address as ss prints it."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:6168, [::1]:6168)")
    return _host(host), _port(port)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _count(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0..86400 seconds")
    return value


def add_server_options(parser: argparse.ArgumentParser, port_help: str | None) -> None:
    """The options of a server model, shared by `serve` and the dashboard (`web` has its
    own --host and --port, and passes the rest on: port_help None)."""
    if port_help is not None:
        parser.add_argument("--host", type=_host, default=DEFAULT_HOST, help="address to bind (default: %(default)s)")
        parser.add_argument("--port", type=_port, help=port_help)
    parser.add_argument("--backlog", type=_count, default=DEFAULT_BACKLOG, help="listen backlog (default: %(default)s)")
    parser.add_argument("--delay", type=_seconds, default=0.0, help="seconds of work per request")
    parser.add_argument("--max-fds", type=_count, help="RLIMIT_NOFILE of the server")
    parser.add_argument(
        "--cap-procs",
        type=_count,
        default=DEFAULT_CAP_PROCS,
        help="most processes in the server's tree (default: %(default)s)",
    )
    parser.add_argument(
        "--cap-threads",
        type=_count,
        default=DEFAULT_CAP_THREADS,
        help="most threads in the server (default: %(default)s)",
    )
    fork = parser.add_argument_group("fork")
    fork.add_argument(
        "--sigchld", choices=SIGCHLD_MODES, default="default", help="SIGCHLD handling (default: %(default)s)"
    )
    fork.add_argument(
        "--close-fd",
        dest="close_fd",
        action="store_true",
        default=True,
        help="the parent closes each connection (default)",
    )
    fork.add_argument("--leak-fd", dest="close_fd", action="store_false", help="the parent keeps each connection open")
    fork.add_argument("--max-children", type=_count, help="most children at once")
    pools = parser.add_argument_group("prefork, threadpool")
    pools.add_argument("--workers", type=_count, default=DEFAULT_WORKERS, help="pool size (default: %(default)s)")
    thread = parser.add_argument_group("thread")
    thread.add_argument("--max-memory", type=_count, metavar="MB", help="RLIMIT_AS of the server, in MB")


def dashboard_args(args: argparse.Namespace) -> list[str]:
    """The dashboard's options among args, as a command line (what each `web` tab runs)."""
    config = ServerConfig.from_args(args.model, argparse.Namespace(**{**vars(args), "host": DEFAULT_HOST, "port": 0}))
    return ["--model", config.model, *config.as_args()[1:]]


def build_parser() -> Parser:
    parser = Parser(prog="svcviz", description="See how network servers work, from the kernel's side.")
    parser.add_argument("--model", choices=NAMES, default="serial", help="model to start (default: %(default)s)")
    add_server_options(parser, f"port (default: {DEFAULT_PORT}, or any free port when it is taken; 0: any)")
    parser.add_argument("--record", metavar="FILE", help="record what the dashboard sees (gzip when FILE ends in .gz)")
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run one server model in this terminal")
    serve.add_argument("model", metavar="MODEL", help=f"one of: {', '.join(NAMES)}")
    add_server_options(serve, f"port (default: {DEFAULT_PORT}; 0: any free port)")

    watch = commands.add_parser("watch", help="watch any server: its processes, threads, fds and queue")
    target = watch.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", type=_port, help="the server listening on this port")
    target.add_argument("--pid", type=_count, help="the server rooted at this process")
    target.add_argument("--addr", type=_addr, metavar="HOST:PORT", help="the server listening on this address")
    watch.add_argument(
        "--netns",
        metavar="PATH|PID|NAME",
        help="look in this network namespace (a container's: its pid, or `ip netns` name)",
    )
    watch.add_argument("--once", action="store_true", help="print one snapshot and exit")
    watch.add_argument("--json", action="store_true", help="with --once: the snapshot as JSON")
    watch.add_argument(
        "--client-protocol",
        choices=("line", "http", "redis", "raw"),
        help="what the c key's clients speak (default: from the port, else from how the server answers a probe)",
    )
    # SUPPRESS: an unset --record here must not hide one given before `watch`.
    watch.add_argument("--record", metavar="FILE", default=argparse.SUPPRESS, help="record what the dashboard sees")

    replay = commands.add_parser("replay", help="a recording (svcviz --record FILE) played back")
    replay.add_argument("file", metavar="FILE")
    replay.add_argument("--at", type=_seconds, metavar="SECONDS", help="the sample this long after the start")
    replay.add_argument("--json", action="store_true", help="with --at: that snapshot as `watch --once --json` does")
    replay.add_argument(
        "--svg",
        metavar="DIR|OUT",
        help="a handout: one SVG of the dashboard per step in DIR, and an index.html; with --at: that sample's picture",
    )
    steps = replay.add_mutually_exclusive_group()
    steps.add_argument("--every", type=_seconds, metavar="SECONDS", help="with --svg: a step every SECONDS")
    steps.add_argument("--at-events", action="store_true", help="with --svg: a step at each event (the default)")

    trace = commands.add_parser("trace", help="a server tree's system calls as they happen (strace)")
    target = trace.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", type=_port, help="the server listening on this port")
    target.add_argument("--pid", type=_count, help="the server rooted at this process")
    trace.add_argument("--seconds", type=_seconds, help="stop after this long (default: until Ctrl-C)")
    trace.add_argument("--json", action="store_true", help="one JSON object per event")
    trace.add_argument(
        "--kernel",
        action="store_true",
        help="the kernel's own tracepoints instead of strace (root): the server is never stopped, "
        "so it runs at full speed; events say fds and results, not the bytes or the peers",
    )

    blast = commands.add_parser("blast", help="open N connections as fast as possible (the serviceblaster)")
    blast.add_argument("count", type=_count, metavar="N")
    blast.add_argument("--port", type=_port, required=True)
    blast.add_argument("--host", type=_host, default=DEFAULT_HOST)
    blast.add_argument("--hold", type=_seconds, default=0.0, help="seconds to keep them open")
    blast.add_argument("--query", help="send this request on each connection")
    blast.add_argument("--rate", type=float, help="connections per second (default: as fast as possible)")
    blast.add_argument("--timeout", type=_seconds, default=5.0, help="connect timeout (default: %(default)s)")
    blast.add_argument("--json", action="store_true")
    blast.add_argument(
        "--netns",
        metavar="PATH|PID|NAME",
        help="connect from inside this network namespace (a container's: its pid, or `ip netns` name)",
    )

    web = commands.add_parser("web", help="the dashboard in a browser: one dashboard and lab per tab")
    web.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s; 0.0.0.0: the LAN)")
    web.add_argument("--port", type=_port, default=8000, help="port to serve on (default: %(default)s)")
    web.add_argument("--public-url", help="the URL browsers reach this at (default: the one each browser used)")
    web.add_argument("--max-tabs", type=_count, default=8, help="most tabs at once (default: %(default)s)")
    web.add_argument("--model", choices=NAMES, default="serial", help="model each tab starts (default: %(default)s)")
    add_server_options(web, None)

    commands.add_parser("parse", help="the service protocol over stdin/stdout")

    models = commands.add_parser("models", help="list the server models")
    models.add_argument("--json", action="store_true")

    scenario = commands.add_parser("scenario", help="run the lecture's experiments and check them")
    which = scenario.add_mutually_exclusive_group()
    which.add_argument("name", nargs="?")
    which.add_argument("--all", action="store_true")
    which.add_argument("--list", action="store_true")
    scenario.add_argument("--json", action="store_true")
    scenario.add_argument("--quick", action="store_true", help="shorter waits (what the test suite runs)")

    bench = commands.add_parser("bench", help="the utilization table of the models")
    bench.add_argument("--clients", type=_count, default=8, help="concurrent clients (default: %(default)s)")
    bench.add_argument(
        "--delay", type=_seconds, default=0.05, help="seconds of work per request (default: %(default)s)"
    )
    bench.add_argument("--seconds", type=_seconds, default=3.0, help="seconds per model (default: %(default)s)")
    bench.add_argument("--json", action="store_true")
    return parser


def list_models(as_json: bool) -> int:
    if as_json:
        print(
            json.dumps(
                [{"name": m.name, "lecture": m.lecture, "idea": m.idea, "processes": m.processes} for m in MODELS],
                indent=2,
            )
        )
        return 0
    width = max(len(m.name) for m in MODELS)
    for number, m in enumerate(MODELS, 1):
        print(f"{number}  {m.name:<{width}}  {m.lecture:<16}  {m.idea}")
    return 0


def watch(args: argparse.Namespace) -> int:
    """`svcviz watch`: the target is checked first, so a bad one is one line and exit 2 in
    both forms; then one snapshot (--once) or the dashboard in watch mode."""
    from svcviz.observe.watch import attach, print_once

    observer = attach(pid=args.pid, port=args.port, addr=args.addr, netns=args.netns)
    if observer is None:
        return 2
    if args.pid is not None:
        args.pid = observer.root_pid  # a thread id names its process from here on
    if args.json and not args.once:
        observer.close()
        print("svcviz watch: --json needs --once (one snapshot as JSON)", file=sys.stderr)
        return 2
    if args.once and args.record:
        observer.close()
        print("svcviz watch: --record records the dashboard: not with --once", file=sys.stderr)
        return 2
    if args.once:
        return print_once(observer, args.json)
    from svcviz.tui.app import watch_main

    try:
        return watch_main(args, observer)  # its lab takes the observer over: the server is not looked for twice
    finally:
        observer.close()


def _replay_dashboard(recording: Recording) -> int:
    gc.disable()  # for the dashboard's start, as in main()
    from svcviz.tui.app import replay_main  # Textual only when a dashboard opens

    return replay_main(recording)


def _replay_handout(recording: Recording, directory: str, every: float | None) -> list[tuple[str, int]]:
    from svcviz.tui.handout import write_handout  # Textual only when a dashboard is drawn

    return write_handout(recording, directory, every)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None and argv.index(args.command) > 0:
        # The options before a command are the dashboard's: `serve` would silently drop a
        # --host given there for its own default, the other commands would ignore them.
        given = argv[0]
        parser.error(f"{given}: an option of the dashboard (svcviz with no command), not of {args.command}")
    if args.command in (None, "watch"):
        # A dashboard's start (or one snapshot's) makes objects that live as long as it:
        # modules, classes, styles, widgets. The cyclic collector walked them ~150 times
        # before the first frame, 100 ms of 800 here. Off until that frame (tui/app.py turns
        # it back on), or for a one-shot command's life; the other commands run long.
        gc.disable()
    try:
        return dispatch(args)
    except KeyboardInterrupt:
        return 130


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from svcviz.servers.run import serve

        return serve(ServerConfig.from_args(args.model, args))
    if args.command == "parse":
        from svcviz.services import parse_main

        return parse_main()
    if args.command == "models":
        return list_models(args.json)
    if args.command == "watch":
        return watch(args)
    if args.command == "trace":
        from svcviz.trace.command import main as trace_main

        return trace_main(args)
    if args.command == "blast":
        from svcviz.clients import blast_main

        return blast_main(args)
    if args.command == "scenario":
        from svcviz.scenarios.command import main as scenario_main

        return scenario_main(args)
    if args.command == "web":
        from svcviz.web import main as web_main

        return web_main(args, dashboard_args(args))
    if args.command == "replay":
        from svcviz.record.replay import main as replay_main

        return replay_main(args, _replay_dashboard, _replay_handout)
    if args.command == "bench":
        from svcviz.bench import main as bench_main

        return bench_main(args)
    from svcviz.tui.app import main as dashboard_main

    return dashboard_main(args)
