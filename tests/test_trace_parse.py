"""The strace parser on captured output: every line kind, -yy annotations, escaping."""

from __future__ import annotations

from pathlib import Path

from svcviz.trace.events import TraceEvent, printable
from svcviz.trace.parse import StraceParser, split_args

FIXTURE = Path(__file__).parent / "fixtures" / "strace_fork_thread.txt"


def events() -> list[TraceEvent]:
    parser = StraceParser()
    return [e for e in map(parser.feed, FIXTURE.read_text().splitlines()) if e is not None]


def lines() -> list[str]:
    return [e.line() for e in events() if not e.on_a_file]


def test_fork_server_story_in_order_with_pids():
    assert lines()[:10] == [
        "10785 accept4(3) = 4 (127.0.0.1:58474)",
        "10785 clone() = 11398",
        "10785 close(4)",
        '11398 recvfrom(4) = 8 "discard\\n"',
        '11398 sendto(4) = 10 "discard,9\\n"',
        '11398 recvfrom(4) = 0 ""',
        "11398 close(4)",
        "11398 exit_group(0)",
        "10785 accept4(3) = ? ERESTARTSYS",
        "10785 --- SIGCHLD from 11398 (CLD_EXITED)",
    ]
    assert lines()[10:12] == ["10785 wait4(-1) = 11398", "10785 wait4(-1) = -1 ECHILD"]


def test_resumed_call_keeps_the_time_it_began_and_its_first_argument():
    [interrupted] = [e for e in events() if e.result == "? ERESTARTSYS"]
    assert interrupted.time == 1796159327.659410
    assert interrupted.args == "3"
    assert interrupted.fd_target == "TCP:[127.0.0.1:37855]"


def test_detached_call_and_strace_own_words_give_no_event():
    parser = StraceParser()
    assert parser.feed("10785 1796159327.947008 accept4(3<TCP:[127.0.0.1:37855]>,  <detached ...>") is None
    assert parser.feed("strace: Process 4242 detached") is None
    assert parser.feed("") is None


def test_files_are_marked_so_the_socket_story_can_drop_them():
    on_files = [e for e in events() if e.on_a_file]
    assert {e.fd_target for e in on_files} == {"/proc/11398/stat", "/etc/services"}
    tty = [e for e in events() if e.fd_target.startswith("/dev/pts")]
    assert tty and not tty[0].on_a_file and tty[0].detail == '"a, b\\n"'


def test_thread_clone3_exit_and_killed():
    got = lines()
    assert "12747 clone3() = 12866" in got
    assert "12866 exit(0)" in got
    assert "12866 +++ exited with 0 +++" in got
    assert "4251 +++ killed by SIGKILL +++" in got


def test_client_escape_sequence_stays_escaped():
    [read] = [e for e in events() if e.pid == 12866 and e.syscall == "recvfrom" and e.result == "13"]
    assert read.detail == '"disc\\33[31mard\\n"'
    assert "\x1b" not in read.line()


def test_printable_escapes_every_control():
    assert printable("a\x1b[2Jb\x07\x9b\n") == "a\\x1b[2Jb\\x07\\x9b\\x0a"
    assert printable("déjà vu") == "déjà vu"


def test_json_has_the_fields():
    first = events()[0].as_json()
    assert set(first) >= {"time", "pid", "syscall", "args", "result", "detail"}
    assert first["syscall"] == "accept4" and first["result"] == "4" and first["detail"] == "(127.0.0.1:58474)"


def test_split_args_keeps_nested_annotations_and_structs_whole():
    text = '0</dev/pts/3<char 136:3>>, {sa_family=AF_INET, sin_port=htons(1)}, "x, \\"y", [16]'
    assert split_args(text) == [
        "0</dev/pts/3<char 136:3>>",
        "{sa_family=AF_INET, sin_port=htons(1)}",
        '"x, \\"y"',
        "[16]",
    ]
    assert split_args("") == []
    assert split_args("5<TCP:[127.0.0.1:6168->127.0.0.1:50140]>, 1") == [
        "5<TCP:[127.0.0.1:6168->127.0.0.1:50140]>",
        "1",
    ]


def test_without_yy_the_peer_comes_from_accepts_sockaddr():
    parser = StraceParser()
    v4 = parser.feed(
        "1714  1796159974.085846 accept4(3<socket:[392926]>, {sa_family=AF_INET, sin_port=htons(35308), "
        'sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 4<socket:[391063]>'
    )
    assert v4.line() == "1714 accept4(3) = 4 (127.0.0.1:35308)"
    assert v4.fd_target == "socket:[392926]" and not v4.on_a_file
    v6 = parser.feed(
        "1714 1796159974.1 accept4(3<socket:[1]>, {sa_family=AF_INET6, sin6_port=htons(40000), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, [28], SOCK_CLOEXEC) = 5<socket:[2]>'
    )
    assert v6.detail == "([::1]:40000)"
