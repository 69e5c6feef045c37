"""`svcviz replay FILE --at S --svg OUT`: a recorded sample's picture, for a handout."""

from __future__ import annotations

import subprocess
import sys

from picture_scenes import SCENES
from svcviz.lab import LabUpdate
from svcviz.record.writer import Writer
from svcviz.servers.config import ServerConfig


def svcviz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svcviz", *args], capture_output=True, text=True, timeout=30)


def recorded(tmp_path) -> str:
    snapshot, clients, model = SCENES["fork-leak-fd"]()
    path = str(tmp_path / "r.jsonl")
    writer = Writer(path)
    writer.write(LabUpdate(snapshot, (), tuple(clients), ServerConfig(model, close_fd=False), 4242, "running", None))
    writer.close()
    return path


def test_svg_of_a_recorded_sample(tmp_path):
    out = tmp_path / "leak.svg"
    done = svcviz("replay", recorded(tmp_path), "--at", "0", "--svg", str(out))
    assert done.returncode == 0, done.stderr
    svg = out.read_text()
    assert svg.startswith("<svg") and "4242 parent" in svg and "6 ← #3" in svg


def test_svg_needs_at_and_a_writable_place(tmp_path):
    path = recorded(tmp_path)
    done = svcviz("replay", path, "--svg", str(tmp_path / "x.svg"))
    assert done.returncode == 2 and "--svg needs --at" in done.stderr
    done = svcviz("replay", path, "--at", "0", "--svg", str(tmp_path / "no" / "x.svg"))
    assert done.returncode == 2 and "cannot write" in done.stderr and len(done.stderr.splitlines()) == 1
