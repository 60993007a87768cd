"""Connecting Python's imaplib to the target: plaintext, STARTTLS, implicit TLS; small helpers."""

from __future__ import annotations

import imaplib
import ssl
from typing import Any, TypeVar

import pytest
from imapclient.response_parser import parse_response

from tests.imap_interop.peers import Target

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"
TIMEOUT = 30
C = TypeVar("C", bound=imaplib.IMAP4)


def tls_context(target: Target) -> ssl.SSLContext:
    """A client context that trusts only the server's self-signed certificate and checks the name."""
    ctx = ssl.create_default_context(cafile=str(target.cert))
    ctx.check_hostname = True
    return ctx


class Clients:
    """Opens imaplib connections to the target and closes every one of them at the end."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.opened: list[imaplib.IMAP4] = []

    def _keep(self, conn: C) -> C:
        self.opened.append(conn)
        return conn

    def plain(self) -> imaplib.IMAP4:
        return self._keep(imaplib.IMAP4(self.target.host, self.target.imap_port, timeout=TIMEOUT))

    def imaps(self) -> imaplib.IMAP4_SSL:
        t = self.target
        return self._keep(imaplib.IMAP4_SSL(t.host, t.imaps_port, ssl_context=tls_context(t), timeout=TIMEOUT))

    def login(self, user: str = ALICE) -> imaplib.IMAP4:
        conn = self.plain()
        ok(conn.login(user, self.target.users[user]))
        return conn

    def close(self) -> None:
        for conn in self.opened:
            if conn.state != "LOGOUT":
                try:
                    conn.logout()
                except (imaplib.IMAP4.error, OSError):
                    pass
            try:
                conn.shutdown()
            except OSError:
                pass


def capabilities(conn: imaplib.IMAP4) -> set[str]:
    typ, data = conn.capability()
    assert typ == "OK"
    return {c.upper() for c in data[-1].decode().split()}


def has_cap(target: Target, caps: set[str], cap: str) -> bool:
    """Whether to test ``cap``: courriel must advertise it; a peer listing it as missing may not."""
    if cap.upper() in caps:
        return True
    assert cap in target.missing, f"{cap} not advertised: {sorted(caps)}"
    return False


def need_cap(target: Target, caps: set[str], cap: str) -> None:
    """A capability the test needs: on courriel it must be advertised; a peer may lack it."""
    if cap.upper() in caps:
        return
    if cap in target.missing:
        pytest.skip(f"{target.name} lacks {cap}")
    raise AssertionError(f"{cap} not advertised: {sorted(caps)}")


def ok(result: tuple[str, Any]) -> list[Any]:
    typ, data = result
    assert typ == "OK", data
    return list(data)


def fetch(conn: imaplib.IMAP4, seq: str, items: str, uid: bool = False) -> dict[int, dict[bytes, Any]]:
    """FETCH parsed by imapclient's generic parser: {msgno: {ITEM-NAME: value}} (names upper-case)."""
    typ, data = conn.uid("FETCH", seq, items) if uid else conn.fetch(seq, items)
    assert typ == "OK", data
    out: dict[int, dict[bytes, Any]] = {}
    chunk: list[Any] = []
    for piece in data:
        if piece is None:
            continue
        if isinstance(piece, tuple) and piece[0].endswith(b"}") and b"~{" in piece[0]:
            # RFC 3516 literal8 "~{n}": imaplib reads it as a literal; the parser wants "{n}"
            head, _, size = piece[0].rpartition(b"~{")
            piece = (head + b"{" + size, piece[1])
        chunk.append(piece)
        if isinstance(piece, bytes) and piece.endswith(b")"):
            parsed = parse_response(chunk)
            msgno, attrs = parsed[0], parsed[1]
            entry = out.setdefault(msgno, {})
            for name, value in zip(attrs[::2], attrs[1::2]):
                entry[name.upper()] = value
            chunk = []
    assert not chunk, chunk
    return out


def untagged(conn: imaplib.IMAP4, name: str) -> list[Any]:
    """Pop the untagged responses called ``name`` that imaplib collected."""
    _typ, data = conn.response(name)
    return [d for d in data if d is not None]


def literal(conn: imaplib.IMAP4, data: bytes) -> None:
    """Send ``data`` as a literal after the next command's arguments (imaplib's mechanism)."""
    conn.literal = data  # type: ignore[assignment]  # typeshed says str; imaplib wants bytes
