"""The registry is the one place a model is described: nothing else asks a model's name."""

from __future__ import annotations

import ast
from pathlib import Path

import svcviz
from svcviz.servers.registry import BY_NAME, MODELS, NAMES, SIGCHLD_MODEL, model_of

SRC = Path(svcviz.__file__).parent


def model_names_in(node: ast.expr) -> list[str]:
    """The model names a compared expression spells out: "fork", or ("thread", "threadpool")."""
    if isinstance(node, ast.Constant) and node.value in NAMES:
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [name for element in node.elts for name in model_names_in(element)]
    return []


def name_comparisons(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                found += [(node.lineno, name) for name in model_names_in(side)]
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            found += [(node.pattern.lineno, name) for name in model_names_in(node.pattern.value)]
    return found


def test_no_model_name_is_compared_outside_the_registry():
    compared = [
        f"{path.relative_to(SRC)}:{line}: {name!r}"
        for path in sorted(SRC.rglob("*.py"))
        if path != SRC / "servers" / "registry.py"
        for line, name in name_comparisons(path.read_text())
    ]
    assert compared == []


def test_the_search_finds_a_comparison_when_there_is_one():
    code = 'if config.model == "fork" or model in ("thread", "threadpool"):\n    pass\n'
    assert name_comparisons(code) == [(1, "fork"), (1, "thread"), (1, "threadpool")]
    assert name_comparisons('kind = "fork"\ncolours = {"fork": "green"}\n') == []


def test_each_model_has_its_own_key_in_the_lectures_order():
    assert [model.key for model in MODELS] == [str(n) for n in range(1, len(MODELS) + 1)]


def test_capabilities_as_the_lecture_tells_them():
    assert [m.name for m in MODELS if m.forks] == ["fork"] == [SIGCHLD_MODEL.name]
    assert [m.name for m in MODELS if m.threaded] == ["thread", "threadpool"]
    assert [m.name for m in MODELS if m.has_pool] == ["prefork", "threadpool"]
    assert [m.name for m in MODELS if not m.serves] == ["listen-only", "accept-once", "relisten"]
    assert model_of("fork") is BY_NAME["fork"] and model_of("watch") is None
    assert all(model.lesson.shows and model.lesson.try_next for model in MODELS)


def test_every_lesson_step_names_a_fact_the_checklist_judges():
    from svcviz.scenarios.checklist import FACTS
    from svcviz.tui.lessons import WATCHING

    for lesson in [model.lesson for model in MODELS] + [WATCHING]:
        for step in lesson.try_next:
            assert step.fact in FACTS, step
