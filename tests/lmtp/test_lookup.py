"""The lookup service over a socket (socketmap): what an MTA asks before accepting RCPT."""

from __future__ import annotations

import socket

import pytest

from courriel.config import load_config
from courriel.lookup import socketmap as sm
from courriel.mailauth.srs import Srs
from tests.lmtp.conftest import Lmtp


def ask(sock: socket.socket, *requests: bytes) -> list[bytes]:
    """Send the requests pipelined, read one netstring reply each."""
    sock.sendall(b"".join(b"%d:%s," % (len(r), r) for r in requests))
    buf, out = b"", list[bytes]()
    while len(out) < len(requests):
        chunk = sock.recv(4096)
        assert chunk, (buf, out)
        buf += chunk
        while b":" in buf:
            size, _, rest = buf.partition(b":")
            if len(rest) < int(size) + 1:
                break
            assert rest[int(size) : int(size) + 1] == b","
            out.append(rest[: int(size)])
            buf = rest[int(size) + 1 :]
    return out


@pytest.fixture
def lookup(server: Lmtp) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port("lookup")), timeout=30)


def test_recipients_and_domains(lookup: socket.socket) -> None:
    with lookup:
        assert ask(
            lookup,
            b"recipients alice@example.test",
            b"recipients Alice@Example.TEST",  # case-insensitive, answered in lower case
            b"recipients team@example.test",  # an alias
            b"recipients anyone@other.test",  # a catch-all
            b"recipients ghost@example.test",
            b"recipients loop1@example.test",  # an alias loop delivers nowhere
            b"recipients someone@remote.test",  # not a local domain
            b"recipients @example.test",  # Postfix's catch-all probe: no catch-all here
            b"recipients alice",
            b"virtuser bob@example.test",  # Sendmail's virtusertable name
            b"domains example.test",
            b"domains OTHER.test",
            b"domains remote.test",
            b"domains alice@example.test",
            b"aliases alice@example.test",
        ) == [
            b"OK alice@example.test",
            b"OK alice@example.test",
            b"OK team@example.test",
            b"OK anyone@other.test",
            b"NOTFOUND ",
            b"NOTFOUND ",
            b"NOTFOUND ",
            b"NOTFOUND ",
            b"NOTFOUND ",
            b"OK bob@example.test",
            b"OK example.test",
            b"OK other.test",
            b"NOTFOUND ",
            b"NOTFOUND ",
            b"PERM unknown map 'aliases'",
        ]


def test_malformed_request_gets_perm_and_close(lookup: socket.socket) -> None:
    with lookup:
        lookup.sendall(b"5:hello,")  # a netstring, but not "<map> <key>": the stream is fine
        assert lookup.recv(100) == sm.perm("request is not '<map> <key>'")
        lookup.sendall(b"hello\r\n")  # not a netstring: out of sync, closed
        assert lookup.recv(100) == sm.perm("netstring length expected")
        assert lookup.recv(100) == b""


def test_oversized_request_is_refused(lookup: socket.socket) -> None:
    with lookup:
        lookup.sendall(b"2000:" + b"x" * 2001)
        assert lookup.recv(100) == sm.perm("request too long")
        assert lookup.recv(100) == b""


def test_srs_bounce_address_is_known(server: Lmtp, lookup: socket.socket) -> None:
    """A bounce to mail an alias forwarded (SRS0=...@example.test) is accepted: courriel
    sends it back to the original sender."""
    srs = Srs.from_config(load_config(server.data, env=server.env))
    address = srs.forward("someone@remote.test").encode()
    forged = address.replace(b"SRS0=", b"SRS0=X", 1)
    with lookup:
        assert ask(lookup, b"recipients " + address, b"recipients " + forged) == [
            b"OK " + address.lower(),
            b"NOTFOUND ",
        ]
