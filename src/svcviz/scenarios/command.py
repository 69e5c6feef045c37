"""`svcviz scenario`: the lecture's experiments, run on real servers and checked.

    svcviz scenario --list
    svcviz scenario serial
    svcviz scenario --all [--json] [--quick]

Exit 0 when every claim holds, 1 when one does not, 2 for a name that is no scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterable

from rich.console import Console

from svcviz.scenarios.base import Claim, Experiment, Result, Scenario
from svcviz.scenarios.lecture import SCENARIOS as SERVER_SCENARIOS
from svcviz.scenarios.pipes import PIPE_SCENARIOS
from svcviz.scenarios.report import as_json, print_list, print_result, print_summary

SCENARIOS: tuple[Experiment, ...] = PIPE_SCENARIOS + SERVER_SCENARIOS  # the lecture's order: pipes first, then servers
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}

__all__ = ["BY_NAME", "SCENARIOS", "Claim", "Experiment", "Result", "Scenario", "main", "run_all"]


def chosen(args: argparse.Namespace) -> tuple[Experiment, ...] | str:
    """The scenarios asked for, or the one line that says what is wrong (a name, --all and
    --list exclude each other: argparse says so)."""
    if args.all:
        return SCENARIOS
    if not args.name:
        return "name a scenario, or give --all or --list"
    if args.name not in BY_NAME:
        return f"no scenario {args.name!r} (see svcviz scenario --list)"
    return (BY_NAME[args.name],)


async def run_all(
    scenarios: Iterable[Experiment], quick: bool, on_result: Callable[[Result], None] | None = None
) -> list[Result]:
    results: list[Result] = []
    for scenario in scenarios:
        results.append(await scenario.run(quick=quick))
        if on_result:
            on_result(results[-1])
    return results


def main(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    if args.list:
        if args.json or args.quick:
            print(
                "svcviz scenario: --list runs nothing and prints a plain list: no --json, no --quick", file=sys.stderr
            )
            return 2
        print_list(SCENARIOS)
        return 0
    scenarios = chosen(args)
    if isinstance(scenarios, str):
        print(f"svcviz scenario: {scenarios}", file=sys.stderr)
        return 2
    show = None if args.json else (lambda result: print_result(console, result))
    results = asyncio.run(run_all(scenarios, args.quick, show))
    if args.json:
        print(as_json(results))
    else:
        print_summary(console, results)
    return 0 if all(r.passed for r in results) else 1
