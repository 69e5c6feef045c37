"""`svcviz bench`: the utilization table, measured for real (one second per model)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from svcviz.servers.registry import NAMES

# The models that keep serving client after client; the other three serve one or none.
SERVING = ("serial", "fork", "thread", "prefork", "threadpool", "event")


def svcviz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svcviz", *args], capture_output=True, text=True, timeout=120)


def test_bench_json_shape_and_the_utilization_story():
    # Judged by what the models' structure allows, never by this machine's speed: D seconds
    # of sleep per request caps one worker at 1/D answers a second however fast the CPU, so
    # more than that proves requests overlapped. A long D keeps fork's CPU cost per request
    # small beside it, so a loaded machine slows the concurrent models without erasing it.
    delay = 0.2
    done = svcviz("bench", "--seconds", "2", "--delay", str(delay), "--json")
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert (table["clients"], table["delay"], table["seconds"]) == (8, delay, 2.0)
    rows = {row["model"]: row for row in table["models"]}
    assert list(rows) == list(NAMES)
    for name, row in rows.items():
        if name not in SERVING:
            assert row["note"].startswith("not measured") and row["served"] == 0
            continue
        assert row["served"] > 0 and row["failed"] == 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row
        assert row["processes"] >= 1 and row["threads"] >= 1 and row["cpu_percent"] >= 0
    one_worker = 1 / delay  # the most one request at a time can answer per second
    serial = rows["serial"]
    # One request at a time: never more than 1/D a second, and once all eight are queued a
    # request waits for the seven ahead of it (the first few, at the start, wait less).
    assert serial["throughput"] <= one_worker * 1.1
    assert serial["p50_ms"] >= 2 * delay * 1000 and serial["p99_ms"] >= 7 * delay * 1000 * 0.9
    for concurrent in ("event", "thread", "fork", "prefork", "threadpool"):
        assert rows[concurrent]["throughput"] > 1.5 * one_worker, (concurrent, rows[concurrent])
    for pool in ("prefork", "threadpool"):  # four workers: never more than four at a time
        assert rows[pool]["throughput"] <= 4 * one_worker * 1.1, (pool, rows[pool])
    assert (rows["event"]["processes"], rows["event"]["threads"]) == (1, 1)
    assert rows["thread"]["processes"] == 1 and rows["thread"]["threads"] > 1
    assert rows["prefork"]["processes"] == 5 and rows["fork"]["processes"] > 1


def test_bench_table_on_a_terminal():
    done = svcviz("bench", "--seconds", "0.3", "--clients", "2")
    assert done.returncode == 0
    for name in SERVING:
        assert name in done.stdout
    assert "Not measured" in done.stdout and "relisten" in done.stdout


def test_bench_bad_arguments_exit_2():
    for args in (["--clients", "0"], ["--seconds", "0"], ["--clients", "x"]):
        done = svcviz("bench", *args)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args, named",
    [
        (["--clients", "70000"], "--clients 70000"),
        (["--clients", "0"], "--clients 0"),
        (["--delay", "5000"], "--delay"),
    ],
)
def test_bench_names_its_own_bad_option_before_running_any_model(args, named):
    """It ran models, then blamed --backlog, an option the user never gave."""
    done = svcviz("bench", "--seconds", "0.1", *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"svcviz bench: {named}") and "--backlog" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
