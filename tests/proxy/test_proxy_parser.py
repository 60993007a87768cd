"""courriel.proxy.parse: raw bytes in, header or error out (HAProxy doc/proxy-protocol.txt)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.proxy import (
    V1_MAX,
    V2_MAX_PAYLOAD,
    V2_SIGNATURE,
    ProxyError,
    ProxyHeader,
    ProxyPolicy,
    parse,
    parse_networks,
    read_header,
)

SIG = V2_SIGNATURE


def v2(ver_cmd: int, fam: int, payload: bytes) -> bytes:
    return SIG + bytes([ver_cmd, fam]) + struct.pack("!H", len(payload)) + payload


TCP4_BLOCK = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack("!HH", 51000, 25)
TCP6_BLOCK = (
    socket.inet_pton(socket.AF_INET6, "2001:db8::7")
    + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    + struct.pack("!HH", 443, 993)
)
MAPPED_BLOCK = (
    socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.5")
    + socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1")
    + struct.pack("!HH", 40000, 143)
)
TLV = bytes([0x01]) + struct.pack("!H", 2) + b"h2" + bytes([0x04]) + struct.pack("!H", 0)

VALID = [
    # version 1
    (b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 25\r\n",
     ProxyHeader(1, 44, source=("192.0.2.7", 51000), destination=("198.51.100.1", 25))),
    (b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
     ProxyHeader(1, 44, source=("0.0.0.0", 0), destination=("255.255.255.255", 65535))),
    (b"PROXY TCP6 2001:db8::7 2001:DB8::1 443 993\r\n",
     ProxyHeader(1, 44, source=("2001:db8::7", 443), destination=("2001:db8::1", 993))),
    (b"PROXY TCP6 ::ffff:7f00:5 ::1 1 2\r\n",
     ProxyHeader(1, 34, source=("127.0.0.5", 1), destination=("::1", 2))),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, 15)),
    (b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
     b" 65535 65535\r\n", ProxyHeader(1, 107)),
    (b"PROXY UNKNOWN anything at all\r\n", ProxyHeader(1, 31)),
    # what follows the header is not part of it
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nEHLO x\r\n",
     ProxyHeader(1, 32, source=("1.2.3.4", 1), destination=("5.6.7.8", 2))),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n\n\r\x16\x03\x01\r",  # any byte after it (TLS)
     ProxyHeader(1, 32, source=("1.2.3.4", 1), destination=("5.6.7.8", 2))),
    (b"PROXY UNKNOWN\r\n\r\r\n", ProxyHeader(1, 15)),
    # version 2
    (v2(0x21, 0x11, TCP4_BLOCK),
     ProxyHeader(2, 28, source=("192.0.2.7", 51000), destination=("198.51.100.1", 25))),
    (v2(0x21, 0x21, TCP6_BLOCK),
     ProxyHeader(2, 52, source=("2001:db8::7", 443), destination=("2001:db8::1", 993))),
    (v2(0x21, 0x21, MAPPED_BLOCK),
     ProxyHeader(2, 52, source=("127.0.0.5", 40000), destination=("127.0.0.1", 143))),
    (v2(0x21, 0x11, TCP4_BLOCK + TLV),  # TLVs are skipped
     ProxyHeader(2, 28 + len(TLV), source=("192.0.2.7", 51000), destination=("198.51.100.1", 25))),
    (v2(0x20, 0x00, b""), ProxyHeader(2, 16, local=True)),  # LOCAL: health check
    (v2(0x20, 0x11, TCP4_BLOCK), ProxyHeader(2, 28, local=True)),  # LOCAL ignores addresses
    (v2(0x21, 0x00, b""), ProxyHeader(2, 16)),  # UNSPEC: real endpoints
    (v2(0x21, 0x12, TCP4_BLOCK), ProxyHeader(2, 28)),  # UDP: real endpoints
    (v2(0x21, 0x31, bytes(216)), ProxyHeader(2, 232)),  # AF_UNIX: real endpoints
    (v2(0x21, 0x11, TCP4_BLOCK) + b"\x16\x03\x01", ProxyHeader(2, 28, source=("192.0.2.7", 51000),
                                                              destination=("198.51.100.1", 25))),
]  # fmt: skip


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid(data: bytes, expected: ProxyHeader) -> None:
    assert parse(data) == expected


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_every_proper_prefix_needs_more(data: bytes, expected: ProxyHeader) -> None:
    for n in range(expected.length):
        assert parse(data[:n]) is None, n


INVALID = [
    (b"EHLO example.org\r\n", "no PROXY"),
    (b"\x16\x03\x01\x02\x00", "no PROXY"),  # a TLS ClientHello
    (b"PROXX", "no PROXY"),
    (b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "no PROXY"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bare LF"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "bare CR"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "bare CR"),
    (b"PROXY UNKNOWN\rx\r\n", "bare CR"),
    (b"PROXY UNKNOWN \n\r\n", "bare LF"),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown PROXY protocol"),
    (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown PROXY protocol"),
    (b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "unknown PROXY protocol"),  # two spaces
    (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "exactly two addresses"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "exactly two addresses"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "exactly two addresses"),
    (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "bad TCP4 address"),  # heading zero
    (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "bad TCP4 address"),
    (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad TCP4 address"),
    (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "bad TCP4 address"),
    (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad TCP6 address"),
    (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad TCP6 address"),
    (b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "bad TCP6 address"),
    (b"PROXY TCP6 12345::1 ::1 1 2\r\n", "bad TCP6 address"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "bad port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "bad port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xff\r\n", "bad port"),
    (b"PROXY UNKNOWN " + b"x" * (V1_MAX - 14), "without CRLF"),
    (b"PROXY\r\n", "no PROXY"),
    (b"PROXY \r\n", "unknown PROXY protocol"),
    (SIG[:5] + b"X", "no PROXY"),
    (SIG[:11] + b"\x00" + bytes([0x21, 0x11, 0, 12]), "no PROXY"),
    (v2(0x11, 0x11, TCP4_BLOCK), "version 1 is not 2"),
    (v2(0x31, 0x11, TCP4_BLOCK), "version 3 is not 2"),
    (SIG + bytes([0x22]), "command 2"),
    (v2(0x2F, 0x11, TCP4_BLOCK), "command 15"),
    (v2(0x21, 0x41, TCP4_BLOCK), "family/protocol 0x41"),
    (SIG + bytes([0x21, 0x13]), "family/protocol 0x13"),
    (v2(0x21, 0x11, TCP4_BLOCK[:11]), "TCP4 address block too short"),
    (v2(0x21, 0x21, TCP6_BLOCK[:35]), "TCP6 address block too short"),
    (SIG + bytes([0x21, 0x11]) + struct.pack("!H", V2_MAX_PAYLOAD + 1), "too long"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), INVALID)
def test_invalid(data: bytes, message: str) -> None:
    with pytest.raises(ProxyError, match=message):
        parse(data)


def test_longest_v1_line_is_accepted_and_one_more_byte_is_not() -> None:
    line = b"PROXY UNKNOWN " + b"x" * (V1_MAX - 16) + b"\r\n"
    assert len(line) == V1_MAX
    assert parse(line) == ProxyHeader(1, V1_MAX)
    with pytest.raises(ProxyError, match="without CRLF"):
        parse(b"PROXY UNKNOWN " + b"x" * (V1_MAX - 15) + b"\r\n")


@given(st.sampled_from(VALID), st.binary(max_size=100))
def test_anything_may_follow_a_header(case: tuple[bytes, ProxyHeader], tail: bytes) -> None:
    data, expected = case
    assert parse(data[: expected.length] + tail) == expected


@given(st.binary(max_size=200))
def test_never_raises_anything_else(data: bytes) -> None:
    try:
        header = parse(data)
    except ProxyError:
        return
    assert header is None or 0 < header.length <= len(data)


@given(st.binary(max_size=60))
def test_garbage_after_a_valid_signature_is_an_error_or_needs_more(tail: bytes) -> None:
    for head in (b"PROXY ", SIG):
        try:
            header = parse(head + tail)
        except ProxyError:
            continue
        assert header is None or header.length <= len(head + tail)


def test_policy_trusts_addresses_and_networks() -> None:
    policy = ProxyPolicy(parse_networks(["127.0.0.2", "10.1.0.0/16", "2001:db8::/32"]))
    assert policy.trusts("127.0.0.2")
    assert policy.trusts("::ffff:127.0.0.2")
    assert policy.trusts("10.1.200.3")
    assert policy.trusts("2001:db8::9")
    assert not policy.trusts("127.0.0.1")
    assert not policy.trusts("10.2.0.1")
    assert not policy.trusts("")
    with pytest.raises(ValueError, match="trusted_proxies: 'nonsense'"):
        parse_networks(["nonsense"])


async def _read_from(chunks: list[bytes], timeout: float = 5.0) -> tuple[ProxyHeader | Exception, bytes]:
    """Send chunks (one write each, with a pause between, then end of stream) and read the
    header on the other side; returns the header (or the error) and what is left after it."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        async def send() -> None:
            for chunk in chunks:
                b.send(chunk)
                await asyncio.sleep(0.01)
            b.shutdown(socket.SHUT_WR)

        sender = asyncio.create_task(send())
        try:
            result: ProxyHeader | Exception = await read_header(a, timeout)
        except (ProxyError, TimeoutError) as exc:
            result = exc
        await sender
        rest = b""
        loop = asyncio.get_running_loop()
        while chunk := await loop.sock_recv(a, 4096):
            rest += chunk
        return result, rest
    finally:
        a.close()
        b.close()


def test_read_header_consumes_exactly_the_header() -> None:
    line = b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 25\r\n"
    header, rest = asyncio.run(_read_from([line + b"\x16\x03\x01hello"]))
    assert header == ProxyHeader(1, len(line), source=("127.0.0.5", 40000), destination=("127.0.0.1", 25))
    assert rest == b"\x16\x03\x01hello"


def test_read_header_in_fragments() -> None:
    data = v2(0x21, 0x11, TCP4_BLOCK + TLV)
    header, rest = asyncio.run(_read_from([data[:3], data[3:14], data[14:20], data[20:] + b"A1 LOGIN"]))
    assert isinstance(header, ProxyHeader) and header.source == ("192.0.2.7", 51000)
    assert rest == b"A1 LOGIN"
    line = b"PROXY TCP6 ::1 ::1 1 2\r\n"
    header, rest = asyncio.run(_read_from([line[:10], line[10:23], line[23:] + b"x"]))
    assert isinstance(header, ProxyHeader) and header.source == ("::1", 1) and rest == b"x"


def test_read_header_refuses_early_and_on_close() -> None:
    result, _ = asyncio.run(_read_from([b"EHLO x\r\n"]))
    assert isinstance(result, ProxyError)
    result, _ = asyncio.run(_read_from([b"PROXY TCP4 1.2"]))  # then the peer closes
    assert isinstance(result, ProxyError) and "closed" in str(result)


def test_read_header_times_out() -> None:
    async def run() -> None:
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            b.send(b"PROXY TCP4 ")
            with pytest.raises(TimeoutError):
                await read_header(a, 0.2)
        finally:
            a.close()
            b.close()

    asyncio.run(run())
