"""The lessons' words against the dashboard and the README: every key a hint tells the
student to press is bound, and in the README's key table; the README's model table names
each model with its own key and lecture."""

from __future__ import annotations

import re
from pathlib import Path

from svcviz.servers.registry import MODELS
from svcviz.tui.app import SvcvizApp
from svcviz.tui.widgets.clients import ClientTable

README = (Path(__file__).parent.parent / "README.md").read_text()
NAMED_KEYS = ("home", "end", "enter")
# A key in a hint: a single character or a named key, right after `press`, `then`, `and` or
# a comma ("press x, then home and x"), or opening "enter types a line".
KEY_IN_HINT = re.compile(rf"(?:\bpress|\bthen|\band|,)\s+([a-zA-Z]|{'|'.join(NAMED_KEYS)})\b|\b(enter) types\b")


def hint_keys(text: str) -> set[str]:
    return {a or b for a, b in KEY_IN_HINT.findall(text)}


def bound_keys() -> set[str]:
    bindings = [*SvcvizApp.BINDINGS, *ClientTable.BINDINGS]
    return {key.strip() for binding in bindings for key in binding.key.split(",")}


def readme_key_table() -> str:
    start = README.index("| key | what it does |")
    return README[start : README.index("\n\n", start)]


def test_the_hint_reader_finds_each_key_of_a_hint():
    assert hint_keys("press x (the newest closes), then home and x (the first closes)") == {"x", "home"}
    assert hint_keys("press c: the first client is accepted (idle until it sends: enter types a line)") == {
        "c",
        "enter",
    }
    assert hint_keys("press C: the queue fills, then clients knock and drops count up") == {"C"}


def test_every_key_a_hint_names_is_bound_and_in_the_readme():
    bound, table = bound_keys(), readme_key_table()
    for model in MODELS:
        for step in model.lesson.try_next:
            keys = hint_keys(step.text)
            assert keys, f"{model.name}: a step that names no key: {step.text!r}"
            for key in keys:
                assert key in bound, f"{model.name}: {key!r} in {step.text!r} is bound to nothing"
                assert f"`{key}`" in table, f"{model.name}: {key!r} in {step.text!r} is not in the README's key table"


def test_the_readme_model_table_names_each_model_with_its_key_and_lecture():
    for model in MODELS:
        assert f"| {model.key} | {model.name} | {model.lecture} |" in README, model.name
