"""The header fields that carry mailbox state: Status, X-Status, X-Keywords, Return-Path."""

from __future__ import annotations

import pytest

from courriel.mailformats import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    SEEN,
    MailItem,
    with_status_headers,
)
from courriel.mailformats.headers import (
    header_block,
    return_path,
    set_status_headers,
    status_flags,
    x_keywords,
)


@pytest.mark.parametrize(
    ("data", "block"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n", b"A: 1\r\nB: 2\r\n"),
        (b"\r\nbody", b""),
        (b"A: 1\r\n", b"A: 1\r\n"),
        (b"", b""),
    ],
)
def test_header_block(data: bytes, block: bytes) -> None:
    assert header_block(data) == block


@pytest.mark.parametrize(
    ("data", "flags"),
    [
        (b"Status: RO\r\n\r\n", {SEEN}),
        (b"Status: O\r\n\r\n", set()),
        (b"status:R\r\nx-status: AFDT\r\n\r\n", {SEEN, ANSWERED, FLAGGED, DELETED, DRAFT}),
        (b"Subject: x\r\n\r\nStatus: R\r\n", set()),  # in the body: not a header
        (b"X-Status-Old: A\r\n\r\n", set()),
        (b"Subject: Status: R\r\n\r\n", set()),
    ],
)
def test_status_flags(data: bytes, flags: set[str]) -> None:
    assert status_flags(data) == flags


def test_x_keywords() -> None:
    data = (
        b"X-Keywords: $Junk work,home\r\n\tfolded\r\nX-Keywords: (bad)\r\n\r\nX-Keywords: body\r\n"
    )
    assert x_keywords(data) == {"$Junk", "work", "home", "folded"}


@pytest.mark.parametrize(
    ("data", "sender"),
    [
        (b"Return-Path: <a@b>\r\nReturn-Path: <old@b>\r\n\r\n", "a@b"),
        (b"return-path:<>\r\n\r\n", ""),
        (b"Return-Path: a@b\r\n\r\n", "a@b"),
        (b"Return-Path:\r\n <folded@b>\r\n\r\n", "folded@b"),
        (b"Return-Path: <a b@c>\r\n\r\n", None),
        (b"Subject: x\r\n\r\nReturn-Path: <a@b>\r\n", None),
    ],
)
def test_return_path(data: bytes, sender: str | None) -> None:
    assert return_path(data) == sender


@pytest.mark.parametrize(
    ("data", "flags", "result"),
    [
        (b"Subject: x\r\n\r\nbody\r\n", {SEEN}, b"Subject: x\r\nStatus: RO\r\n\r\nbody\r\n"),
        (b"Status: RO\r\nX-Status: F\r\n\tfold\r\nSubject: x\r\n\r\nb\r\n", {ANSWERED, DRAFT},
         b"Subject: x\r\nStatus: O\r\nX-Status: AT\r\n\r\nb\r\n"),
        (b"\r\nbody\r\n", {FLAGGED, DELETED}, b"Status: O\r\nX-Status: DF\r\n\r\nbody\r\n"),
        (b"Subject: x", set(), b"Subject: x\r\nStatus: O\r\n"),
        (b"Subject: x\r\nStatus: R", set(), b"Subject: x\r\nStatus: O\r\n"),
    ],
)  # fmt: skip
def test_set_status_headers(data: bytes, flags: set[str], result: bytes) -> None:
    assert set_status_headers(data, flags) == result
    assert status_flags(result) == flags


def test_with_status_headers_keeps_the_rest() -> None:
    item = MailItem(b"Subject: x\r\n\r\n", "a@b", None, frozenset({SEEN}), frozenset({"k"}))
    new = with_status_headers(item)
    assert new.data == b"Subject: x\r\nStatus: RO\r\n\r\n"
    assert (new.envelope_from, new.flags, new.keywords) == ("a@b", item.flags, item.keywords)
