"""ManageSieve wire format: raw bytes in, commands out; responses encoded byte-exact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.managesieve.protocol import (
    Command,
    ParseError,
    literal_size,
    parse_command,
    quote,
    response,
    valid_script_name,
)

PARSE = [
    (b"CAPABILITY\r\n", Command("CAPABILITY", ())),
    (b"logout\r\n", Command("LOGOUT", ())),
    (b'PUTSCRIPT "a b" {5+}\r\nkeep;\r\n', Command("PUTSCRIPT", ("a b", "keep;"))),
    (b'PUTSCRIPT "x" {6}\r\nkeep;\n\r\n', Command("PUTSCRIPT", ("x", "keep;\n"))),
    (b'HAVESPACE "s" 1024\r\n', Command("HAVESPACE", ("s", 1024))),
    (b'AUTHENTICATE "PLAIN" "AGFAYgBj"\r\n', Command("AUTHENTICATE", ("PLAIN", "AGFAYgBj"))),
    (b'SETACTIVE ""\r\n', Command("SETACTIVE", ("",))),
    (b'GETSCRIPT "q\\"uo\\\\te"\r\n', Command("GETSCRIPT", ('q"uo\\te',))),
    ('RENAMESCRIPT "é" "ü"\r\n'.encode(), Command("RENAMESCRIPT", ("é", "ü"))),
]

BAD = [
    b"\r\n",
    b"123\r\n",
    b'PUTSCRIPT "unterminated\r\n',
    b'PUTSCRIPT "bad \\escape"\r\n',
    b'PUTSCRIPT {10+}\r\nshort\r\n',
    b"PUTSCRIPT x\r\n",
    b'PUTSCRIPT "a""b"\r\n',
    b"HAVESPACE \"s\" 123456789012\r\n",
    b'GETSCRIPT "\xff"\r\n',
]


@pytest.mark.parametrize(("raw", "cmd"), PARSE)
def test_parse(raw: bytes, cmd: Command) -> None:
    assert parse_command(raw) == cmd


@pytest.mark.parametrize("raw", BAD)
def test_parse_errors(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(raw)


def test_literal_size_at_line_end() -> None:
    assert literal_size(b'PUTSCRIPT "a" {12+}\r\n') == 12
    assert literal_size(b'PUTSCRIPT "a" {12}\r\n') == 12
    assert literal_size(b'PUTSCRIPT "{12+}" x\r\n') is None


def test_encoding() -> None:
    assert response("OK") == b"OK\r\n"
    assert response("NO", "no such script", "NONEXISTENT") == b'NO (NONEXISTENT) "no such script"\r\n'
    assert quote('a"b\\') == b'"a\\"b\\\\"'
    assert quote("two\r\nlines") == b"{10}\r\ntwo\r\nlines"


def test_script_names() -> None:
    assert valid_script_name("vacation") and valid_script_name("été 2026")
    assert not any(valid_script_name(n) for n in ("", "a\nb", "tab\there", "x\u2028", "\x85", "n" * 513))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_parser_raises_only_parse_errors(raw: bytes) -> None:
    try:
        parse_command(raw)
    except ParseError:
        pass
