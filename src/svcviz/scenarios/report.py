"""Scenario results for people (a rich table per scenario) and for programs (JSON)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from svcviz.plain import plain
from svcviz.scenarios.base import Experiment, Result


def table(result: Result) -> Table:
    verdict = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
    grid = Table(
        title=f"{verdict} {result.name}: {result.title} ({result.seconds:.1f} s)", title_justify="left", expand=True
    )
    grid.add_column("", width=1)
    grid.add_column("claim", ratio=3)
    grid.add_column("expected", ratio=2)
    grid.add_column("observed", ratio=3)
    for claim in result.claims:
        # What was observed and what a server said are data, not markup.
        grid.add_row(
            "[green]✓[/]" if claim.passed else "[red]✗[/]", claim.claim, claim.expected, Text(plain(claim.observed))
        )
    if result.error:
        grid.add_row("[red]![/]", "[red]the scenario could not run to its end[/]", "", Text(plain(result.error)))
    for words in result.server_said:
        grid.add_row("", Text(f"the server said: {plain(words)}", style="dim"), "", "")
    return grid


def print_result(console: Console, result: Result) -> None:
    console.print(table(result))
    console.print()


def print_summary(console: Console, results: list[Result]) -> None:
    passed = sum(r.passed for r in results)
    failed = [r.name for r in results if not r.passed]
    colour = "green" if not failed else "red"
    console.print(
        f"[{colour}]{passed} of {len(results)} scenarios passed[/]"
        + (f": failed {', '.join(failed)}" if failed else "")
    )


def as_json(results: list[Result]) -> str:
    return json.dumps([r.as_json() for r in results], indent=2)


def print_list(scenarios: tuple[Experiment, ...]) -> None:
    """One line each, unwrapped: for a person and for grep."""
    width = max(len(s.name) for s in scenarios)
    for number, scenario in enumerate(scenarios, 1):
        print(f"{number:2}  {scenario.name:<{width}}  {scenario.title} ({scenario.lecture})")
