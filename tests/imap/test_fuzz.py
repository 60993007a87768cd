"""Fuzzing: the parser on arbitrary bytes, and a live session in each state on random
commands (every command gets exactly one tagged answer; the session goes on)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.imap.protocol.parser import COMMANDS, ParseError, parse_command
from courriel.imap.protocol.types import Command
from tests.harness import CourrielServer
from tests.imap.conftest import Raw, imap, message, unique

TOKENS = [
    b" ", b"(", b")", b"[", b"]", b"<", b">", b".", b":", b",", b"*", b"$", b"%", b'"', b"\\", b"{3}\r\nabc",
    b"{2+}\r\nxy", b"~{1}\r\n\x00", b"1", b"2:4", b"0", b"4294967296", b"NIL", b"INBOX", b"BODY", b"BODY.PEEK",
    b"HEADER.FIELDS", b"MIME", b"TEXT", b"FLAGS", b"\\Seen", b"UID", b"OR", b"NOT", b"ALL", b"RETURN",
    b"CHARSET", b"1-Jan-2024", b'"1-Jan-2024 00:00:00 +0000"', b"&AOk-", b"&", b"\xc3\xa9", b"\x00", b"\r",
    b"\n", b"+FLAGS", b".SILENT", b"SUBJECT", b"HEADER", b"LARGER", b"STATUS", b"MESSAGES", b"USE",
]  # fmt: skip
NAMES = [*sorted(COMMANDS), "UID FETCH", "UID STORE", "UID SEARCH", "UID COPY", "UID MOVE", "UID EXPUNGE"]
command_lines = st.builds(
    lambda name, parts: b"t " + name.encode() + b"".join(parts) + b"\r\n",
    st.sampled_from(NAMES),
    st.lists(st.sampled_from(TOKENS), max_size=12),
)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.binary(max_size=200), command_lines))
def test_parser_only_raises_parse_error(data: bytes) -> None:
    try:
        cmd = parse_command(data)
    except ParseError:
        return
    assert isinstance(cmd, Command)
    assert cmd.tag == data.split(b" ", 1)[0].decode()


@settings(max_examples=400, deadline=None)
@given(command_lines, st.booleans())
def test_parser_is_deterministic_and_utf8_mode_safe(data: bytes, utf8: bool) -> None:
    for _ in range(2):
        try:
            first = parse_command(data, utf8=utf8)
        except ParseError:
            continue
        assert parse_command(data, utf8=utf8) == first


# --- live sessions ----------------------------------------------------------------------------
# Commands that change the session's state in ways that would end the fuzz run early.
SAFE_NAMES = [n for n in NAMES if n not in ("LOGOUT", "STARTTLS", "AUTHENTICATE", "LOGIN", "IDLE", "DELETE", "RENAME")]
session_lines = st.builds(
    lambda name, parts: b"t " + name.encode() + b"".join(p for p in parts if p not in (b"\r", b"\n")) + b"\r\n",
    st.sampled_from(SAFE_NAMES),
    st.lists(st.sampled_from([t for t in TOKENS if not t.startswith((b"{", b"~"))]), max_size=10),
)


@pytest.fixture(scope="module")
def fuzz_box(server: CourrielServer) -> str:
    client = imap(server, "bob@example.test")
    box = unique("fuzz")
    client.create(box)
    for i in range(3):
        client.append(box, None, None, message(f"fuzz {i}"))
    client.logout()
    return box


@pytest.fixture(params=["not authenticated", "authenticated", "selected"])
def session(request: pytest.FixtureRequest, server: CourrielServer, fuzz_box: str) -> Iterator[Raw]:
    raw = Raw(server.port("imap"))
    if request.param != "not authenticated":
        raw.login("bob@example.test")
    if request.param == "selected":
        raw.ok(f"s EXAMINE {fuzz_box}")
    yield raw
    raw.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(session_lines, min_size=1, max_size=4))
def test_session_answers_every_command(session: Raw, lines: list[bytes]) -> None:
    for line in lines:
        session.send(line)
        out = session.read_response(b"t")
        assert out[-1].split(b" ")[1] in (b"OK", b"NO", b"BAD"), out
    assert session.cmd("n NOOP")[-1] == b"n OK NOOP completed\r\n"
