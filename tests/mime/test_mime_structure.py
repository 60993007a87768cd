"""The data model: part numbering (RFC 9051 §6.4.5), JSON round trips, decode speed."""

from __future__ import annotations

import json
import time

import pytest

from courriel.mime import (
    BodyPart,
    body_from_json,
    body_to_json,
    envelope_from_json,
    envelope_to_json,
    parse_message,
)
from courriel.mime.structure import Address, Envelope

from .corpus import CORPUS, crlf


def _mixed(boundary: str, *parts: bytes) -> bytes:
    b = boundary.encode()
    out = b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n"
    for p in parts:
        out += b"--" + b + b"\r\n" + p + b"\r\n"
    return out + b"--" + b + b"--\r\n"


def _leaf(ctype: str, body: str) -> bytes:
    return f"Content-Type: {ctype}\r\n\r\n{body}".encode()


def _rfc822(inner: bytes) -> bytes:
    return b"Content-Type: message/rfc822\r\n\r\n" + inner


# The example message of RFC 9051 §6.4.5 (and RFC 3501 §6.4.5).
RFC_EXAMPLE = b"Subject: example\r\n" + _mixed(
    "m",
    _leaf("text/plain", "1"),
    _leaf("application/octet-stream", "2"),
    _rfc822(
        b"Subject: three\r\n"
        + _mixed("n", _leaf("text/plain", "3.1"), _leaf("application/octet-stream", "3.2"))
    ),
    _mixed(
        "o",
        _leaf("image/gif", "4.1"),
        _rfc822(
            b"Subject: four-two\r\n"
            + _mixed(
                "p",
                _leaf("text/plain", "4.2.1"),
                b"Content-Type: multipart/alternative; boundary=q\r\n\r\n"
                b"--q\r\n" + _leaf("text/plain", "4.2.2.1") + b"\r\n"
                b"--q\r\n" + _leaf("text/richtext", "4.2.2.2") + b"\r\n--q--",
            )
        ),
    ),
)

EXPECTED_SECTIONS = {
    (1,): "text/plain",
    (2,): "application/octet-stream",
    (3,): "message/rfc822",
    (3, 1): "text/plain",
    (3, 2): "application/octet-stream",
    (4,): "multipart/mixed",
    (4, 1): "image/gif",
    (4, 2): "message/rfc822",
    (4, 2, 1): "text/plain",
    (4, 2, 2): "multipart/alternative",
    (4, 2, 2, 1): "text/plain",
    (4, 2, 2, 2): "text/richtext",
}


def test_rfc9051_part_numbers() -> None:
    data = RFC_EXAMPLE
    msg = parse_message(data)
    root = msg.body
    for section, mime in EXPECTED_SECTIONS.items():
        part = root.part_at(section)
        assert part is not None, section
        assert part.mime_type == mime, section
        if mime not in ("message/rfc822",) and not part.children:
            assert data[part.body_start : part.end] == ".".join(map(str, section)).encode()
    assert [s for s, _ in root.walk()][1:] == list(EXPECTED_SECTIONS)
    # 3.HEADER / 3.TEXT: the encapsulated message's header and body.
    three = root.part_at((3,))
    assert three is not None and three.message is not None
    assert data[three.message.header_start : three.message.body_start].startswith(
        b"Subject: three\r\nContent-Type: multipart/mixed; boundary=n\r\n\r\n"
    )
    assert data[three.message.body_start : three.message.end].startswith(b"--n\r\n")
    # 4.1.MIME: the MIME header of the GIF part.
    gif = root.part_at((4, 1))
    assert gif is not None
    assert data[gif.header_start : gif.body_start] == b"Content-Type: image/gif\r\n\r\n"
    for bad in [(0,), (5,), (1, 1), (4, 3), (4, 2, 3), (4, 2, 2, 3)]:
        assert root.part_at(bad) is None, bad
    assert root.part_at(()) is root


def test_single_part_inside_message_rfc822() -> None:
    data = crlf(
        b"Content-Type: message/rfc822\n\nSubject: inner\nContent-Type: text/plain\n\nhello"
    )
    root = parse_message(data).body
    one = root.part_at((1,))
    inner = root.part_at((1, 1))
    assert one is root and root.message is not None
    assert inner is root.message  # a non-multipart message has only part 1
    assert data[inner.body_start : inner.end] == b"hello"
    assert root.part_at((1, 2)) is None


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_json_round_trip(name: str) -> None:
    msg = parse_message(CORPUS[name])
    env_json = envelope_to_json(msg.envelope)
    body_json = body_to_json(msg.body)
    assert env_json.isascii() and body_json.isascii()
    assert envelope_from_json(env_json) == msg.envelope
    assert body_from_json(body_json) == msg.body
    assert body_from_json(body_json.encode()) == msg.body  # bytes from SQLite BLOBs


def test_json_keeps_surrogates_and_groups() -> None:
    env = Envelope(
        "d", "Caf\udce9", [Address("N\udcff", None, "a", "b")], None,
        [Address("R", None, "r", "s")], [Address(None, None, "g", None),
                                         Address(None, None, None, None)],
        None, [], "<i>", None,
    )  # fmt: skip
    back = envelope_from_json(envelope_to_json(env))
    assert back == env
    assert (
        back.subject is not None and back.subject.encode("utf-8", "surrogateescape") == b"Caf\xe9"
    )
    assert back.sender is None  # absent stays absent; only equal-to-from is shared
    layout = json.loads(envelope_to_json(env._replace(sender=env.from_)))
    assert layout[3] == 0 and layout[4] != 0  # sender written as "same as from"


def test_json_layout_is_positional() -> None:
    part = BodyPart("text", "plain", [("charset", "utf-8")], [("Charset", "utf-8")], size=3)
    v = json.loads(body_to_json(part))
    assert v[:4] == ["text", "plain", [["charset", "utf-8"]], [["Charset", "utf-8"]]]
    assert v[7] == 3 and v[18] == [] and v[19] is None and v[20] is None
    same = json.loads(body_to_json(BodyPart("a", "b", [("x", "y")], [("x", "y")])))
    assert same[3] is None  # imap_params equal to params are not repeated


def test_decode_speed() -> None:
    """FETCH ENVELOPE / BODYSTRUCTURE for 10,000 messages decode from stored JSON fast.

    Measured on the development machine: ~40 ms for 10,000 envelopes of 5 addresses,
    ~95 ms for 10,000 seven-part body structures. The bounds below leave room for slow CI.
    """
    msg = parse_message(CORPUS["nested"])
    env_json = envelope_to_json(msg.envelope)
    body_json = body_to_json(msg.body)
    start = time.perf_counter()
    for _ in range(10_000):
        envelope_from_json(env_json)
    env_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(10_000):
        body_from_json(body_json)
    body_seconds = time.perf_counter() - start
    assert env_seconds < 0.25, env_seconds
    assert body_seconds < 1.0, body_seconds


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_offsets_of_every_part(name: str) -> None:
    data = CORPUS[name]
    msg = parse_message(data)
    seen = 0
    stack = [msg.body]
    while stack:
        part = stack.pop()
        seen += 1
        assert 0 <= part.header_start <= part.body_start <= part.end <= len(data)
        assert len(data[part.body_start : part.end]) == part.size
        if part.lines is not None:
            body = data[part.body_start : part.end]
            assert part.lines == body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)
        for child in part.children:
            assert part.body_start <= child.header_start and child.end <= part.end
        stack.extend(part.children)
        if part.message is not None:
            assert (part.message.header_start, part.message.end) == (part.body_start, part.end)
            stack.append(part.message)
    assert seen >= 1
