"""imaplib: LOGIN, NOOP, CAPABILITY after login, ID, ENABLE, LOGOUT (RFC 9051 §6.1-6.3.1,
RFC 2971 ID, RFC 5161 ENABLE), on a server that allows passwords before TLS."""

from __future__ import annotations

import imaplib
import re

import pytest

from tests.imap_interop.clients import (
    ALICE,
    BOB,
    Clients,
    capabilities,
    has_cap,
    literal,
    need_cap,
    ok,
    untagged,
)
from tests.imap_interop.peers import Target


def test_login_noop_logout(target: Target, clients: Clients) -> None:
    conn = clients.plain()
    assert "LOGINDISABLED" not in capabilities(conn)
    typ, _ = conn.login(ALICE, target.users[ALICE])
    assert typ == "OK" and conn.state == "AUTH"
    caps = capabilities(conn)  # §6.1.1: may change after login; IMAP4rev1 stays
    assert "IMAP4REV1" in caps
    ok(conn.noop())
    assert conn.logout()[0] == "BYE"  # §6.1.3: BYE, then the tagged OK


def test_login_quoted_and_literal_arguments(target: Target, clients: Clients) -> None:
    conn = clients.plain()
    # imaplib quotes arguments with specials; a literal is the other string form (§4.3)
    literal(conn, target.users[BOB].encode())
    typ, _ = conn._simple_command("LOGIN", BOB)
    assert typ == "OK"
    conn.state = "AUTH"
    ok(conn.select("INBOX"))


def test_login_failures(target: Target, clients: Clients) -> None:
    conn = clients.plain()
    for user, password in ((ALICE, "wrong"), ("nobody@example.test", "x")):
        with pytest.raises(imaplib.IMAP4.error) as err:
            conn.login(user, password)
        assert "AUTHENTICATIONFAILED" in str(err.value)
    assert conn.state == "NONAUTH"
    ok(conn.login(ALICE, target.users[ALICE]))  # still usable after failures


def test_commands_in_the_wrong_state(target: Target, clients: Clients) -> None:
    conn = clients.plain()
    typ, _ = _raw(conn, "SELECT", "INBOX")  # one only: servers may drop clients that err often
    assert typ in ("NO", "BAD")
    ok(conn.login(ALICE, target.users[ALICE]))
    typ, _ = _raw(conn, "FETCH", "1 FLAGS")  # no mailbox selected
    assert typ in ("NO", "BAD")
    typ, _ = _raw(conn, "FROBNICATE", "")
    assert typ == "BAD"
    ok(conn.noop())


def _raw(conn: imaplib.IMAP4, name: str, args: str) -> tuple[str, list[bytes]]:
    """Send a command regardless of imaplib's idea of the state; BAD comes back as a value."""
    allowed = imaplib.Commands.get(name)
    imaplib.Commands[name] = (*(allowed or ()), conn.state)
    try:
        typ, data = conn._simple_command(name, *([args] if args else []))
        return str(typ), list(data)
    except imaplib.IMAP4.error as e:
        return "BAD", [str(e).encode()]
    finally:
        if allowed is None:
            del imaplib.Commands[name]
        else:
            imaplib.Commands[name] = allowed


def test_id(target: Target, clients: Clients) -> None:
    conn = clients.login()
    need_cap(target, capabilities(conn), "ID")
    typ, _data = conn.xatom("ID", '("name" "imaplib" "version" "3.11")')
    assert typ == "OK"
    ids = untagged(conn, "ID")
    assert len(ids) == 1
    body = ids[0].decode()
    # RFC 2971 §3.2: NIL or a list of field/value pairs
    assert body == "NIL" or re.fullmatch(r'\((\s*("[^"]*"|NIL))*\)', body), body
    typ, _ = conn.xatom("ID", "NIL")
    assert typ == "OK"


def test_enable(target: Target, clients: Clients) -> None:
    conn = clients.login()
    caps = capabilities(conn)
    need_cap(target, caps, "ENABLE")
    typ, _ = conn.xatom("ENABLE", "X-NO-SUCH-EXTENSION")
    assert typ == "OK"  # RFC 5161 §3.1: unknown extensions are ignored
    assert not [e for e in untagged(conn, "ENABLED") if e.strip()]
    if has_cap(target, caps, "IMAP4rev2"):
        typ, _ = conn.xatom("ENABLE", "IMAP4rev2")
        assert typ == "OK"
        assert [e.upper() for e in untagged(conn, "ENABLED")] == [b"IMAP4REV2"]
        ok(conn.select("INBOX"))
        # IMAP4rev2 (§7.3.1): SEARCH results come as ESEARCH, never as "* SEARCH"
        typ, _ = conn.xatom("SEARCH", "ALL")
        assert typ == "OK"
        assert untagged(conn, "ESEARCH") and not untagged(conn, "SEARCH")
    else:
        typ, _data = conn.xatom("ENABLE", "CONDSTORE")
        assert typ == "OK"


def test_logout_from_selected_state(target: Target, clients: Clients) -> None:
    conn = clients.login()
    ok(conn.select("INBOX"))
    assert conn.logout()[0] == "BYE"
