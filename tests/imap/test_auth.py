"""Greeting, CAPABILITY, LOGIN, AUTHENTICATE (PLAIN, SCRAM-SHA-256, SASL-IR), ENABLE, ID,
LOGOUT and state checks, over a raw socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import imaplib
import secrets

from tests.harness import CourrielServer
from tests.imap.conftest import PASSWORD, Raw, plain


def test_greeting_and_capability(raw: Raw) -> None:
    assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    out = raw.ok("a CAPABILITY")
    caps = out[0].split()
    assert caps[:2] == [b"*", b"CAPABILITY"]
    for cap in (b"IMAP4rev2", b"IDLE", b"LITERAL+", b"SASL-IR", b"STARTTLS", b"AUTH=PLAIN", b"AUTH=SCRAM-SHA-256",
                b"MOVE", b"UIDPLUS", b"ESEARCH", b"SEARCHRES", b"BINARY", b"SPECIAL-USE", b"LIST-STATUS"):  # fmt: skip
        assert cap in caps
    assert out[-1] == b"a OK CAPABILITY completed\r\n"


def test_commands_checked_against_state(raw: Raw) -> None:
    assert raw.cmd("a SELECT INBOX") == [b"a BAD SELECT not allowed in the not authenticated state\r\n"]
    assert raw.cmd("b FETCH 1 FLAGS")[-1].startswith(b"b BAD ")
    raw.login("alice@example.test")
    assert raw.cmd("c LOGIN alice@example.test x")[-1].startswith(b"c BAD ")
    assert raw.cmd("d FETCH 1 FLAGS")[-1].startswith(b"d BAD ")
    assert raw.cmd("e EXPUNGE")[-1].startswith(b"e BAD ")
    assert raw.cmd("f BLURDYBLOOP")[-1] == b"f BAD unknown command BLURDYBLOOP\r\n"


def test_login_failure_and_success(raw: Raw) -> None:
    out = raw.cmd("a LOGIN alice@example.test wrong")
    assert out == [b"a NO [AUTHENTICATIONFAILED] invalid credentials\r\n"]
    out = raw.cmd(f'b LOGIN "alice@example.test" {{{len(PASSWORD)}+}}\r\n{PASSWORD}')
    assert out[-1].startswith(b"b OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert b"AUTH=" not in out[-1] and b"STARTTLS" not in out[-1]


def test_login_with_synchronising_literal(raw: Raw) -> None:
    raw.send(b"a LOGIN {18}\r\n")
    assert raw.line() == b"+ Ready for literal data\r\n"
    raw.send(f"alice@example.test {PASSWORD}\r\n".encode())
    assert raw.read_response(b"a")[-1].startswith(b"a OK ")


def test_authenticate_plain_with_and_without_initial_response(server: CourrielServer) -> None:
    raw = Raw(server.port("imap"))
    out = raw.cmd(b"a AUTHENTICATE PLAIN " + plain("bob@example.test"))
    assert out[-1].startswith(b"a OK [CAPABILITY ")
    raw.close()
    raw = Raw(server.port("imap"))
    raw.send(b"a AUTHENTICATE PLAIN\r\n")
    assert raw.line() == b"+ \r\n"
    raw.send(plain("bob@example.test") + b"\r\n")
    assert raw.read_response(b"a")[-1].startswith(b"a OK ")
    raw.close()


def test_authenticate_cancel_and_garbage(raw: Raw) -> None:
    raw.send(b"a AUTHENTICATE PLAIN\r\n")
    assert raw.line() == b"+ \r\n"
    raw.send(b"*\r\n")
    assert raw.read_response(b"a") == [b"a BAD authentication cancelled\r\n"]
    assert raw.cmd(b"b AUTHENTICATE PLAIN " + base64.b64encode(b"no-nuls-here"))[-1].startswith(b"b BAD ")
    assert raw.cmd("c AUTHENTICATE CRAM-MD5")[-1].startswith(b"c NO [CANNOT] ")
    assert raw.cmd(b"d AUTHENTICATE PLAIN " + plain("bob@example.test", "bad"))[-1] == (
        b"d NO [AUTHENTICATIONFAILED] invalid credentials\r\n"
    )


def _scram_client(raw: Raw, user: str, password: str) -> list[bytes]:
    nonce = base64.b64encode(secrets.token_bytes(12))
    first_bare = b"n=" + user.encode() + b",r=" + nonce
    raw.send(b"a AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(b"n,," + first_bare) + b"\r\n")
    line = raw.line()
    assert line.startswith(b"+ ")
    server_first = base64.b64decode(line[2:].strip())
    attrs = dict(item.split(b"=", 1) for item in server_first.split(b","))
    assert attrs[b"r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs[b"s"]), int(attrs[b"i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = b"c=" + base64.b64encode(b"n,,") + b",r=" + attrs[b"r"]
    auth_message = first_bare + b"," + server_first + b"," + without_proof
    signature = hmac.new(stored, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    raw.send(base64.b64encode(without_proof + b",p=" + base64.b64encode(proof)) + b"\r\n")
    line = raw.line()
    if not line.startswith(b"+ "):
        return [line]
    final = base64.b64decode(line[2:].strip())
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert final == b"v=" + base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest())
    raw.send(b"\r\n")
    return raw.read_response(b"a")


def test_authenticate_scram_sha_256(server: CourrielServer) -> None:
    raw = Raw(server.port("imap"))
    assert _scram_client(raw, "carol@example.test", PASSWORD)[-1].startswith(b"a OK [CAPABILITY ")
    raw.close()
    raw = Raw(server.port("imap"))
    assert _scram_client(raw, "carol@example.test", "wrong") == [b"a NO [AUTHENTICATIONFAILED] invalid credentials\r\n"]
    raw.close()


def test_enable_id_noop_logout(raw: Raw) -> None:
    raw.login("alice@example.test")
    assert raw.ok("a ENABLE IMAP4rev2 X-UNKNOWN")[0] == b"* ENABLED IMAP4rev2\r\n"
    assert raw.ok("b ENABLE IMAP4rev2")[0] == b"* ENABLED\r\n"
    assert raw.ok('c ID ("name" "test")')[0] == b'* ID ("name" "courriel" "version" "0.1.0")\r\n'
    assert raw.ok("d NOOP") == [b"d OK NOOP completed\r\n"]
    assert raw.ok("e LOGOUT") == [b"* BYE logging out\r\n", b"e OK LOGOUT completed\r\n"]
    assert raw.line() == b""


def test_imaplib_starttls(server: CourrielServer) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(server.cert))
    ctx.check_hostname = False
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    client.starttls(ctx)
    assert "AUTH=PLAIN" in client.capabilities and "STARTTLS" not in client.capabilities
    client.login("dave@example.test", PASSWORD)
    assert client.select("INBOX")[0] == "OK"
    client.logout()


def test_imaps_implicit_tls(server: CourrielServer) -> None:
    raw = Raw(server.port("imaps"), tls_cert=server.cert)
    assert b"STARTTLS" not in raw.greeting and b"AUTH=PLAIN" in raw.greeting
    raw.login("dave@example.test")
    assert raw.cmd("a STARTTLS") == [b"a BAD STARTTLS not allowed in the authenticated state\r\n"]
    raw.close()
