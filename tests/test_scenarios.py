"""The lecture's experiments: all of them pass on the real models, and a scenario fails,
truthfully, when run against a model that must not satisfy it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from svcviz.lab import Lab
from svcviz.scenarios.command import BY_NAME, SCENARIOS
from svcviz.scenarios.probes import no_process_but
from svcviz.servers.config import ServerConfig


def svcviz(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svcviz", *args], capture_output=True, text=True, timeout=timeout)


def test_all_scenarios_pass_quick():
    done = svcviz("scenario", "--all", "--quick", "--json")
    results = json.loads(done.stdout)
    failed = {r["name"]: [c for c in r["claims"] if not c["passed"]] or r["error"] for r in results if not r["passed"]}
    assert not failed and done.returncode == 0, failed
    assert [r["name"] for r in results] == [s.name for s in SCENARIOS]
    for result in results:
        assert result["claims"], result["name"]
        for claim in result["claims"]:
            assert set(claim) == {"claim", "expected", "observed", "passed"}
            assert claim["observed"] and claim["passed"] is True


def test_list_names_every_scenario():
    done = svcviz("scenario", "--list")
    assert done.returncode == 0
    for scenario in SCENARIOS:
        assert scenario.name in done.stdout
    assert len(SCENARIOS) >= 13


@pytest.mark.parametrize(
    "args",
    [["--all", "--list"], ["serial", "--list"], ["--list", "--json"], ["--list", "--quick"]],
    ids=" ".join,
)
def test_conflicting_flags_are_one_line_and_exit_2(args):
    """`--all --list` listed the scenarios and exited 0: the --all was silently dropped."""
    done = svcviz("scenario", *args, timeout=30)
    assert done.returncode == 2, done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_bad_name_and_no_name_are_one_line_and_exit_2():
    for args in (["scenario", "no-such-thing"], ["scenario"], ["scenario", "serial", "--all"]):
        done = svcviz(*args)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert done.stdout == ""


def test_one_scenario_as_a_table_exits_0():
    done = svcviz("scenario", "fork", "--quick")
    assert done.returncode == 0
    assert "PASS fork" in done.stdout and "3 processes" in done.stdout


async def test_serial_claims_fail_against_the_fork_model():
    result = await BY_NAME["serial"].run(quick=True, model="fork")
    assert not result.passed
    failed = result.claims[-1]
    assert not failed.passed and "accept queue" in failed.claim
    assert "accept queue 0" in failed.observed and "#2 accepted, #3 accepted" in failed.observed


async def test_no_zombies_claim_fails_when_sigchld_is_left_default():
    result = await BY_NAME["fork-sigchld-reap"].run(quick=True, sigchld="default")
    assert not result.passed
    failed = result.claims[-1]
    assert not failed.passed and "2 zombies" in failed.observed


async def test_no_new_process_claim_fails_when_a_child_is_forked_since():
    # fork-leak-fd's "no child is forked" after EMFILE: judged by pids, so it must see a fork.
    lab = Lab(ServerConfig(model="fork", port=0, sigchld="reap"))
    await lab.start()
    try:
        before = await lab.sample()
        probe = no_process_but({p.pid for p in before.snapshot.processes})
        assert probe(before).holds
        await lab.add_clients(1, "interactive")
        update = before
        for _ in range(500):
            update = await lab.sample()
            if len(update.snapshot.processes) == 2:
                break
            await asyncio.sleep(0.01)
        [child] = [p.pid for p in update.snapshot.processes if p.pid != lab.server_pid]
        look = probe(update)
        assert not look.holds and f"new: pid {child}" in look.observed
    finally:
        await lab.stop()
