"""`svcviz replay` and `--record` on bad input: one line on stderr, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def svcviz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svcviz", *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read"),
        (b"", "empty"),
        (b"not json\n", "not an svcviz recording"),
        (b'{"format": "svcviz-recording", "version": 99, "started": 0}\n', "version 99"),
        (b'{"format": "svcviz-recording", "version": 1, "started": 0}\n{"t": 1}\n', "does not fit"),
    ],
)
def test_a_bad_recording_is_one_line(tmp_path, content, said):
    path = tmp_path / "r.jsonl"
    if content is not None:
        path.write_bytes(content)
    done = svcviz("replay", str(path), "--at", "0", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_json_needs_at(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"format": "svcviz-recording", "version": 1, "started": 0}\n')
    done = svcviz("replay", str(path), "--json")
    assert done.returncode == 2 and "--json needs --at" in done.stderr


def test_watch_once_does_not_record(serve, tmp_path):
    server = serve("serial")
    done = svcviz("watch", "--port", str(server.port), "--once", "--record", str(tmp_path / "r.jsonl"))
    assert done.returncode == 2 and "not with --once" in done.stderr
    assert not (tmp_path / "r.jsonl").exists()
