"""Fuzzing the parsers that read what other servers and senders control: SMTP replies,
SRS addresses, DMARC records, status codes. They may refuse, never crash."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.mailauth import dmarc
from courriel.mailauth.srs import Srs
from courriel.queue import dsn
from courriel.queue.client import SmtpClient, SmtpClientError


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_reply_reader_never_crashes(raw: bytes) -> None:
    async def go() -> None:
        reader = asyncio.StreamReader(limit=256)
        reader.feed_data(raw)
        reader.feed_eof()
        client = SmtpClient(reader, None, 5, "peer")  # type: ignore[arg-type]
        try:
            reply = await client.read_reply()
        except SmtpClientError as exc:
            assert exc.code == 421
        else:
            assert 0 <= reply.code <= 999

    asyncio.run(go())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_srs_reverse_never_crashes(address: str) -> None:
    srs = Srs(b"k", "fwd.test")
    assert srs.reverse(address) is None or "@" in address


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.integers(min_value=200, max_value=599), st.text(max_size=40))
def test_dmarc_and_status_never_crash(record: str, code: int, text: str) -> None:
    dmarc.parse_record(record)
    status = dsn.status_of(code, text)
    assert status[0] in "245" and status.count(".") == 2
