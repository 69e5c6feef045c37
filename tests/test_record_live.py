"""Recordings of real labs: a fork session recorded and read back, and one cut by SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from conftest import wait_until
from fork_session import record_fork_session
from svcviz.record.reader import Recording


def replay_json(path, at: float) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "svcviz", "replay", str(path), "--at", f"{at:.6f}", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_a_fork_session_replays_its_zombie_where_it_appeared(tmp_path):
    """c, x, w on the fork model: the zombie is in the recording at the sample it was live."""
    path = tmp_path / "fork.jsonl.gz"
    seen, zombie_at = await record_fork_session(path)

    recording = Recording(str(path))
    replayed = list(recording)
    assert not recording.truncated
    assert replayed == seen[: len(replayed)] and len(replayed) >= len(seen) - 1  # the last may be cut by cancel
    first_zombie = next(u for u in replayed if u.snapshot.zombies)
    assert first_zombie.snapshot.time == zombie_at.snapshot.time
    zombie_pid = first_zombie.snapshot.zombies[0].pid
    assert any(e.kind == "exit" and e.pid == zombie_pid for e in first_zombie.events)
    assert not replayed[-1].snapshot.zombies  # reaped

    at = first_zombie.snapshot.time - replayed[0].snapshot.time
    snapshot = replay_json(path, at)
    assert {p["pid"]: p["state"] for p in snapshot["processes"]}[zombie_pid] == "Z"
    assert snapshot["time"] == first_zombie.snapshot.time
    before = replay_json(path, 0)
    assert all(p["state"] != "Z" for p in before["processes"])


def tmux(socket_name: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket_name, *args], capture_output=True, text=True, timeout=10).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
@pytest.mark.parametrize("name", ["cut.jsonl", "cut.jsonl.gz"])
def test_a_recording_cut_by_sigkill_still_replays(tmp_path, name):
    """`svcviz --record FILE` in a real terminal, killed with SIGKILL mid-session."""
    path = tmp_path / name
    socket_name = f"svcviz-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -m svcviz --model fork --port 0 --record {path}"
    try:
        tmux(socket_name, "new-session", "-d", "-s", "rec", "-x", "120", "-y", "40", command)
        pid = int(tmux(socket_name, "list-panes", "-t", "rec", "-F", "#{pane_pid}").strip())
        assert wait_until(lambda: "accept queue" in tmux(socket_name, "capture-pane", "-p", "-t", "rec"), 15)
        tmux(socket_name, "send-keys", "-t", "rec", "c")
        assert wait_until(lambda: "fork" in tmux(socket_name, "capture-pane", "-p", "-t", "rec"), 10)
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 5)
    finally:
        tmux(socket_name, "kill-server")
    recording = Recording(str(path))
    updates = list(recording)
    assert len(updates) >= 3
    assert updates[-1].config.model == "fork"
    assert any(u.clients for u in updates)  # the client pressed in, as the dashboard saw it
    if name.endswith(".gz"):
        assert recording.truncated  # no gzip end-of-stream marker: svcviz never closed it
    assert replay_json(path, recording.duration())["root_pid"] == updates[-1].snapshot.root_pid
    # The dashboard replays it too: a handout draws each of its event steps.
    done = subprocess.run(
        [sys.executable, "-m", "svcviz", "replay", str(path), "--svg", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "index.html").exists() and list((tmp_path / "out").glob("step-*.svg"))
