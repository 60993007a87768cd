"""The SMTP DATA reader, the BDAT chunk reader and the command-line reader
(courriel.smtp.stream.Input), fed arbitrary byte streams cut into arbitrary chunks, then
dot-unstuffing and the line-ending scan (courriel.smtp.protocol).

Input layout: byte 0 picks the size limit, byte 1 the chunking, byte 2 the line limit and
bytes 3-5 the BDAT chunk sizes; the rest is what the client sends.

Invariants, against a small model of RFC 5321 §4.1.1.4 / §4.5.2 and RFC 3030:
- DATA ends at the first CRLF.CRLF only (no bare LF or CR variant: SMTP smuggling); the
  content, its size and what is left for the next command do not depend on the chunking;
  a message within the size limit is returned whole; an unterminated stream is ``Closed``.
- Unstuffing as the session does it equals ``protocol.unstuff`` and the per-line model.
- ``scan_message`` finds exactly the bare CRs and LFs; a message it passes, dot-stuffed again
  for relaying, reads back through DATA to the same bytes.
- BDAT reads exactly the announced octets; lines split on LF, a CR before it dropped, and
  a line over the limit is consumed and reported as ``None``.
"""

from __future__ import annotations

import asyncio
import re
from typing import cast

from courriel.smtp import protocol as p
from courriel.smtp.stream import Closed, Input
from fuzz.common import check

TOKENS = [
    b"\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\n.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r\n..",
    b".",
    b"\r",
    b"\n",
]
SIZES = (8, 32, 100, 1000, 65536)
_LOOP = asyncio.new_event_loop()


class _Chunks:
    """A StreamReader stand-in that hands out the stream in the chunks given."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.chunks: list[bytes] = []
        i = 0
        k = 0
        while i < len(data):
            n = sizes[k % len(sizes)]
            self.chunks.append(data[i : i + n])
            i += n
            k += 1

    async def read(self, n: int) -> bytes:
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > n:
            chunk, rest = chunk[:n], chunk[n:]
            self.chunks.insert(0, rest)
        return chunk

    def rest(self) -> bytes:
        return b"".join(self.chunks)


async def _nothing() -> None:
    return None


def _input(stream: bytes, sizes: list[int]) -> tuple[Input, _Chunks]:
    src = _Chunks(stream, sizes)
    return Input(cast(asyncio.StreamReader, src), _nothing), src


async def _read_data(
    stream: bytes, sizes: list[int], max_size: int
) -> tuple[bytes, int, bytes] | None:
    inp, src = _input(stream, sizes)
    try:
        content, size = await inp.data(max_size)
    except Closed:
        return None
    finally:
        inp.stop()
    return content, size, bytes(inp.buf) + src.rest()


def _unstuff_model(content: bytes) -> bytes:
    return b"\r\n".join(
        line[1:] if line.startswith(b".") else line for line in content.split(b"\r\n")
    )


def _stuff(message: bytes) -> bytes:
    out = b"." + message if message.startswith(b".") else message
    return out.replace(b"\r\n.", b"\r\n..")


async def _check_data(stream: bytes, sizes: list[int], max_size: int, max_line: int) -> None:
    got = await _read_data(stream, sizes, max_size)
    whole = await _read_data(stream, [1 << 20], max_size)
    check((got is None) == (whole is None), "DATA end depends on the chunking")
    if got is not None and whole is not None:
        check(got[1:] == whole[1:], "DATA size or rest depends on the chunking")
    model = b"\r\n" + stream
    end = model.find(b"\r\n.\r\n")
    if end < 0:
        check(got is None, "DATA ended without CRLF.CRLF")
        return
    check(got is not None, "DATA did not find its CRLF.CRLF")
    assert got is not None
    content, size, rest = got
    check(size == end, f"DATA size {size} != {end}")
    check(rest == stream[end + 3 :], "DATA left the wrong bytes for the next command")
    if end <= max_size:
        check(content == stream[:end], "a message within the limit was not returned whole")
    else:
        check(content in (b"", stream[:end]), "a message over the limit came back partly")
    if not content:
        return
    # What cmd_data does, then the protocol helper and the RFC 5321 §4.5.2 model.
    message = content[1:] if content[:1] == b"." else content
    message = message.replace(b"\r\n.", b"\r\n")
    check(message == p.unstuff(b"\r\n" + content), "session unstuffing != protocol.unstuff")
    check(message == _unstuff_model(content), "unstuffing differs from the per-line model")
    scan = p.scan_message(message, max_line)
    check(scan.bare_lf == bool(re.search(rb"(?<!\r)\n", message)), "bare LF missed or invented")
    check(scan.bare_cr == bool(re.search(rb"\r(?!\n)", message)), "bare CR missed or invented")
    if message.endswith(b"\r\n"):
        lines = message.split(b"\r\n")[:-1]
        check(
            scan.long_line == any(len(line) + 2 > max_line for line in lines),
            "long-line check is wrong",
        )
    if not (scan.bare_lf or scan.bare_cr):
        relayed = await _read_data(_stuff(message) + b".\r\nQUIT\r\n", sizes, 1 << 30)
        check(relayed is not None, "a re-stuffed message has no end")
        assert relayed is not None
        again, _, tail = relayed
        back = again[1:] if again[:1] == b"." else again
        check(
            back.replace(b"\r\n.", b"\r\n") == message and tail == b"QUIT\r\n",
            "relay round trip changed the message",
        )


async def _check_bdat(stream: bytes, sizes: list[int], lengths: list[int]) -> None:
    inp, src = _input(stream, sizes)
    pos = 0
    try:
        for i, n in enumerate(lengths):
            keep = i % 2 == 0
            try:
                chunk = await inp.exact(n, keep)
            except Closed:
                check(pos + n > len(stream), "BDAT reported a close with the octets available")
                return
            check(pos + n <= len(stream), "BDAT returned octets that were never sent")
            check(
                chunk == (stream[pos : pos + n] if keep else b""),
                "BDAT chunk differs from the stream",
            )
            pos += n
        check(bytes(inp.buf) + src.rest() == stream[pos:], "BDAT left the wrong bytes")
    finally:
        inp.stop()


async def _check_lines(stream: bytes, sizes: list[int], limit: int) -> None:
    inp, _src = _input(stream, sizes)
    pieces = stream.split(b"\n")
    expected = [
        None if len(piece) + 1 > limit else (piece[:-1] if piece.endswith(b"\r") else piece)
        for piece in pieces[:-1]
    ]
    got: list[bytes | None] = []
    try:
        while True:
            got.append(await inp.line(limit))
    except Closed:
        pass
    finally:
        inp.stop()
    check(got == expected, "the line reader split the stream differently from the model")


def test_one(data: bytes) -> None:
    if len(data) < 6:
        return
    max_size = SIZES[data[0] % len(SIZES)]
    k = data[1] % 16 + 1
    sizes = list(range(1, k + 1)) if data[1] & 0x80 else [k]
    max_line = 4 + data[2] % 64
    lengths = [b % 64 for b in data[3:6]]
    stream = data[6:]
    _LOOP.run_until_complete(_check_all(stream, sizes, max_size, max_line, lengths))


async def _check_all(
    stream: bytes, sizes: list[int], max_size: int, max_line: int, lengths: list[int]
) -> None:
    await _check_data(stream, sizes, max_size, max_line)
    await _check_bdat(stream, sizes, lengths)
    await _check_lines(stream, sizes, max_line)


def seeds() -> list[bytes]:
    msgs = [
        b"Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n",
        b".\r\n",
        b"..leading dot\r\n.\r\n",
        b"a\r\n..\r\n.\r\n",
        b"smuggle\n.\nMAIL FROM:<x@y>\r\n.\r\n",
        b"smuggle\r\n.\nRCPT TO:<x@y>\r\n.\r\n",
        b"bare\rcr\r\n.\r\n",
        b"long " + b"x" * 200 + b"\r\n.\r\n",
        b"no terminator\r\n",
        b"EHLO a\r\nMAIL FROM:<a@b>\r\n" + b"y" * 80 + b"\nNOOP\r\n",
    ]
    out = []
    for i, m in enumerate(msgs):
        out.append(bytes([i % 5, (i * 37) & 0xFF, 70 + i, 3, 10, 60]) + m)
    return out
