"""The pipe scenarios fail, truthfully, on a pipeline that must not satisfy them
(that they pass is test_scenarios' --all run)."""

from __future__ import annotations

from svcviz.scenarios.command import BY_NAME


async def test_streaming_fails_for_a_stage_that_needs_eof():
    result = await BY_NAME["pipe-streaming"].run(quick=True, parser="tail -n 3")
    assert not result.passed and result.error is None
    failed = result.claims[-1]
    assert not failed.passed and "three answers" in failed.claim and failed.observed == "[]"


async def test_sequential_fails_when_the_cats_run_at_once():
    result = await BY_NAME["pipe-sequential"].run(quick=True, order="shared")
    assert not result.passed and result.error is None
    failed = result.claims[-1]
    assert not failed.passed and "exactly one cat" in failed.claim
    assert failed.observed.count("cat ") == 3


async def test_shared_fails_when_the_cats_take_turns():
    result = await BY_NAME["pipe-shared"].run(quick=True, order="sequential")
    assert not result.passed and result.error is None
    failed = result.claims[-1]
    assert not failed.passed and "four processes" in failed.claim
