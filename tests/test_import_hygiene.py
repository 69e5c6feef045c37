"""The layering holds at run time: what each part of svcviz pulls into sys.modules.

pyproject.toml states the layers as import-linter contracts (`lint-imports`, run by make
lint), read from the source. These tests look at what Python really loads, each in a fresh
interpreter: the servers load nothing of the observer, the lab, the clients or the TUI; the
observer nothing of the lab, the clients, the TUI or the CLI; nothing loads the CLI; and
`svcviz serve`, `svcviz parse` and `svcviz watch --once` never load textual (they start
fast, and a server model is a small program).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import svcviz

SVCVIZ = Path(svcviz.__file__).parent


def modules_of(package: str = "") -> list[str]:
    """Every module under svcviz/PACKAGE, found on disk (a new module is checked without a word here)."""
    names = []
    for path in sorted((SVCVIZ / package).rglob("*.py")):
        parts = ("svcviz", *path.relative_to(SVCVIZ).with_suffix("").parts)
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def loaded_by_importing(*modules: str) -> set[str]:
    """sys.modules of a fresh interpreter once it has imported modules."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(result.stdout))


# `svcviz ARGS` as __main__ runs it, then its sys.modules as the last line on stdout. (Not
# `python -X importtime`: it does not see modules loaded by importlib, as the models are.)
CLI_THEN_MODULES = (
    "import json, sys\n"
    "from svcviz.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "print(json.dumps(sorted(sys.modules)), flush=True)\n"
    "sys.exit(status)\n"
)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI_THEN_MODULES, *args]


def loaded_by_cli(*args: str, status: int = 0, **run) -> set[str]:
    """The modules `svcviz ARGS` loaded by the time it exited with status."""
    result = subprocess.run(cli(*args), capture_output=True, text=True, **run)
    assert result.returncode == status, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def of(packages: tuple[str, ...], loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in packages))


def test_the_server_models_load_nothing_above_them():
    loaded = loaded_by_importing(*modules_of("servers"))
    assert "svcviz.servers.fork" in loaded  # the check sees what was loaded
    above = ("svcviz.observe", "svcviz.lab", "svcviz.clients", "svcviz.tui", "svcviz.scenarios", "svcviz.cli")
    assert of(above, loaded) == []
    assert of(("textual",), loaded) == []


def test_the_observer_loads_nothing_of_lab_clients_tui_or_cli():
    loaded = loaded_by_importing(*modules_of("observe"))
    assert "svcviz.observe.observer" in loaded
    above = ("svcviz.lab", "svcviz.clients", "svcviz.tui", "svcviz.scenarios", "svcviz.bench", "svcviz.cli")
    assert of(above, loaded) == []
    assert of(("textual",), loaded) == []


def test_procstat_loads_nothing_of_svcviz():
    assert of(("svcviz",), loaded_by_importing("svcviz.procstat")) == ["svcviz", "svcviz.procstat"]


def test_no_module_loads_the_cli():
    loaded = loaded_by_importing(*(name for name in modules_of() if name not in ("svcviz.cli", "svcviz.__main__")))
    assert "svcviz.tui.widgets.server" in loaded and "svcviz.scenarios.lecture" in loaded
    assert "svcviz.cli" not in loaded


def test_the_dashboard_does_load_textual():
    """The checks below can fail: read the same way, the dashboard's command shows textual
    (here it stops at once, exit 2, as its stdout is no terminal)."""
    assert "textual.app" in loaded_by_cli("--port", "0", status=2, timeout=60)


def test_svcviz_serve_never_loads_textual():
    proc = subprocess.Popen(
        cli("serve", "serial", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = svcviz_ready(proc)
        with socket.create_connection(("127.0.0.1", ready.port), timeout=5) as client:  # one client served too
            client.sendall(b"http\n")
            assert client.recv(100)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=10)
    loaded = set(json.loads(stdout.splitlines()[-1]))
    assert "svcviz.servers.serial" in loaded
    assert of(("textual", "svcviz.tui", "svcviz.observe", "svcviz.lab"), loaded) == []


def svcviz_ready(proc: subprocess.Popen):
    from svcviz.servers.ready import parse_ready

    ready = parse_ready(proc.stdout.readline())
    if ready is None:
        proc.kill()
        pytest.fail(f"the server did not start: {proc.communicate()[1][-1000:]}")
    return ready


def test_svcviz_parse_never_loads_textual():
    loaded = loaded_by_cli("parse", input="http\n", timeout=30)
    assert "svcviz.services" in loaded
    assert of(("textual", "svcviz.tui"), loaded) == []


def test_svcviz_watch_once_never_loads_textual(serve):
    """Nor dataclasses: its import (with inspect) cost a one-shot snapshot 19 ms here, and
    each class 1.3 ms more; the observer's records are NamedTuples."""
    server = serve("serial")
    loaded = loaded_by_cli("watch", "--port", str(server.port), "--once", "--json", timeout=30)
    assert "svcviz.observe.observer" in loaded
    assert of(("textual", "svcviz.tui", "svcviz.lab"), loaded) == []
    assert of(("dataclasses", "inspect"), loaded) == []
