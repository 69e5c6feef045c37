"""The server's notices to the lab: one line format a person reads and parse_notice reads back."""

from __future__ import annotations

import pytest

from svcviz.servers.notice import ERROR, KINDS, Notice, format_notice, parse_notice


def test_a_notice_reads_as_a_sentence_and_parses_back():
    line = format_notice(ERROR, "accept: Too many open files (EMFILE)")
    assert line == "svcviz: error: accept: Too many open files (EMFILE)"
    assert parse_notice(line) == Notice(ERROR, "accept: Too many open files (EMFILE)")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_survives_the_round_trip_with_colons_in_the_text(kind):
    text = "SIGCHLD handling: reap: 3 children"
    assert parse_notice(f"{format_notice(kind, text)}\n") == Notice(kind, text)


@pytest.mark.parametrize(
    "line",
    [
        "Traceback (most recent call last):",
        "svcviz: fork listening on 127.0.0.1:6168 (pid 4242)",  # the ready line is no notice
        "svcviz serve: port 6168 on 127.0.0.1 is already in use",
        "svcviz: reached: an unknown kind",
        "svcviz: cap",
        "",
    ],
)
def test_a_line_in_no_notice_format_is_none(line):
    assert parse_notice(line) is None


def test_an_unknown_kind_is_refused_when_written():
    with pytest.raises(ValueError, match="unknown notice kind"):
        format_notice("warning", "text")
