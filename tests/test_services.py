"""The service database and the line protocol, as plain data."""

from svcviz.services import (
    ERR_NOT_A_NAME,
    ERR_TOO_LONG,
    MAX_LINE,
    LineReader,
    ServiceDB,
    load_db,
    parse_services,
    replies_for,
    reply,
)

DB = ServiceDB(parse_services("discard 9/tcp sink null\ndiscard 9/udp\nsmtp 25/tcp mail # x\n"), "test")


def test_parse_services_reads_names_aliases_and_protocols():
    assert DB.lookup("discard") == 9
    assert DB.lookup("sink") == 9
    assert DB.lookup("discard", "udp") == 9
    assert DB.lookup("mail") == 25
    assert DB.lookup("smtp", "udp") is None


def test_reply_for_known_unknown_and_proto():
    assert reply(b"discard", DB) == "discard,9"
    assert reply(b"discard/udp", DB) == "discard,9"
    assert reply(b"nosuch", DB) == "error: unknown service 'nosuch'"
    assert reply(b"smtp/udp", DB) == "error: unknown service 'smtp/udp'"


def test_trailing_whitespace_is_stripped_and_blank_lines_get_no_reply():
    assert reply(b"discard \t\r", DB) == "discard,9"
    assert reply(b"", DB) is None
    assert reply(b"   ", DB) is None


def test_binary_and_control_characters_are_not_names():
    assert reply(b"\xff\xfe", DB) == ERR_NOT_A_NAME
    assert reply(b"dis\x00card", DB) == ERR_NOT_A_NAME
    assert reply(b"\x1b[A", DB) == ERR_NOT_A_NAME


def test_c1_controls_and_format_characters_are_not_names_either():
    """They were echoed back in `unknown service '...'`, to the client's terminal."""
    for line in ("\x9b2J", "\u202eevil", "dis\u200bcard", "discard\x85", "a\u2028b", "\x80", "\x9f", "\ufeffx"):
        assert reply(line.encode(), DB) == ERR_NOT_A_NAME, repr(line)
    assert reply("smtp\u00e9".encode(), DB) == "error: unknown service 'smtp\u00e9'"  # letters are not controls


def test_line_reader_splits_crlf_and_keeps_partial_lines():
    reader = LineReader()
    assert reader.feed(b"disc") == []
    assert reader.feed(b"ard\r\nsm") == [b"discard"]
    assert reader.feed(b"tp\n") == [b"smtp"]


def test_line_reader_drops_the_rest_of_a_long_line_once():
    reader = LineReader()
    items = []
    for _ in range(1024):  # a megabyte with no newline, in 1 KiB pieces
        items += reader.feed(b"x" * 1024)
    assert items == [LineReader.TOO_LONG]
    assert reader.feed(b"yyy\ndiscard\n") == [b"discard"]
    assert replies_for(items, DB) == [ERR_TOO_LONG]


def test_line_reader_boundary_is_max_line_bytes():
    reader = LineReader()
    assert reader.feed(b"a" * MAX_LINE + b"\r\n") == [b"a" * MAX_LINE]
    assert reader.feed(b"a" * (MAX_LINE + 1) + b"\n") == [LineReader.TOO_LONG]


def test_bundled_list_has_the_common_services(tmp_path):
    bundled = load_db(str(tmp_path / "missing"))
    assert bundled.source == "bundled"
    for name, port in [
        ("discard", 9),
        ("echo", 7),
        ("ftp", 21),
        ("ssh", 22),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("https", 443),
    ]:
        assert bundled.lookup(name) == port
