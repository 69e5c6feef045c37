"""`svcviz parse`: the lecture's serviceparser, streaming over a real pipe."""

import subprocess
import sys

SVCVIZ = [sys.executable, "-m", "svcviz"]


def test_parse_answers_every_kind_of_line():
    out = subprocess.run([*SVCVIZ, "parse"], input=b"discard\r\nnosuch\n\n\xff\nsmtp", capture_output=True)
    assert out.returncode == 0
    assert out.stdout.decode().splitlines() == [
        "discard,9",
        "error: unknown service 'nosuch'",
        "error: not a service name",
        "smtp,25",
    ]


def test_parse_echoes_no_c1_control_or_bidi_override():
    out = subprocess.run([*SVCVIZ, "parse"], input=b"\xc2\x9b2J\n\xe2\x80\xaeevil\n", capture_output=True)
    assert out.stdout.decode().splitlines() == ["error: not a service name"] * 2


def test_parse_streams_one_reply_per_line_before_eof():
    proc = subprocess.Popen([*SVCVIZ, "parse"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        proc.stdin.write(b"discard\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"discard,9\n"  # before any EOF: it streams
    finally:
        proc.stdin.close()
        proc.wait(5)
        proc.stdout.close()


def test_parse_ends_quietly_when_the_reader_goes_away():
    out = subprocess.run(
        f"yes discard | {sys.executable} -m svcviz parse | head -3",
        shell=True,
        capture_output=True,
        executable="/bin/bash",
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.decode().splitlines() == ["discard,9"] * 3
    assert out.stderr == b""
