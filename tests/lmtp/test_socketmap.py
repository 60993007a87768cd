"""The socketmap wire format (pure functions): netstrings and requests, from raw bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.lookup import socketmap as sm


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", None),
        (b"2", None),
        (b"24:recipients a@example.t", None),
        (b"24:recipients a@example.te", None),  # the comma is still to come
        (b"25:recipients a@example.test,", (b"recipients a@example.test", 29)),
        (b"0:,", (b"", 3)),
        (b"5:a b c,7:domains", (b"a b c", 8)),
    ],
)
def test_decode_netstring(raw: bytes, expected: tuple[bytes, int] | None) -> None:
    assert sm.decode_netstring(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"x:abc,",  # not a length
        b"12345",  # no colon within the longest length
        b"99999:",  # longer than MAX_REQUEST
        b"01:a,",  # leading zero
        b"3:abc;",  # wrong terminator
        b"-1:a,",
        b":abc,",
    ],
)
def test_decode_netstring_refuses(raw: bytes) -> None:
    with pytest.raises(sm.SocketmapError):
        sm.decode_netstring(raw)


def test_encode() -> None:
    assert sm.encode_netstring(b"") == b"0:,"
    assert sm.ok("alice@example.test") == b"21:OK alice@example.test,"
    assert sm.NOTFOUND == b"9:NOTFOUND ,"
    assert sm.temp("db down") == b"12:TEMP db down,"
    assert sm.perm("x") == b"6:PERM x,"
    assert sm.ok("josé@exemple.test") == "21:OK josé@exemple.test,".encode()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"recipients alice@example.test", sm.Request("recipients", "alice@example.test")),
        (b"domains example.test", sm.Request("domains", "example.test")),
        (b"virtuser a b", sm.Request("virtuser", "a b")),  # the key is the rest of the line
        ("recipients josé@exemple.test".encode(), sm.Request("recipients", "josé@exemple.test")),
    ],
)
def test_parse_request(payload: bytes, expected: sm.Request) -> None:
    assert sm.parse_request(payload) == expected


@pytest.mark.parametrize(
    "payload", [b"", b"recipients", b"recipients ", b" key", b"map a\r\nb", b"map \xff"]
)
def test_parse_request_refuses(payload: bytes) -> None:
    with pytest.raises(sm.SocketmapError):
        sm.parse_request(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_decoder_fuzz(raw: bytes) -> None:
    """Any bytes: a netstring and its length, None (more needed), or SocketmapError; never
    another exception, and a decoded request round-trips."""
    try:
        out = sm.decode_netstring(raw)
    except sm.SocketmapError:
        return
    if out is not None:
        payload, used = out
        assert raw[:used] == sm.encode_netstring(payload)
        try:
            sm.parse_request(payload)
        except sm.SocketmapError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=40).filter(lambda t: " " not in t),
    st.text(min_size=1, max_size=200),
)
def test_request_round_trip(name: str, key: str) -> None:
    payload = f"{name} {key}".encode()
    if len(payload) > sm.MAX_REQUEST or not (name + key).isprintable():
        return
    assert sm.decode_netstring(sm.encode_netstring(payload)) == (
        payload,
        len(sm.encode_netstring(payload)),
    )
    assert sm.parse_request(payload) == sm.Request(name, key)
