"""Transcripts of real client sessions (smtplib, imaplib, poplib) against `courriel serve`:
they reproduce the wire (recorded by a tap between client and server) modulo redaction, and
no transcript file holds a password, a SASL response or a message body."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import imaplib
import poplib
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.harness import CourrielServer, open_data_store
from tests.trace.wire import Tap, check_against_wire, transcript_of

ALICE, PW = "alice@example.test", "Alice-Secret-Pw-42"
BODY = "BODY-SECRET-TEXT never in a transcript\n"
APOP_SECRET = "Apop-Shared-Secret-9"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    env = {"COURRIEL_TRACE_ENABLED_LISTENERS": "submission,imap,pop3,lmtp,managesieve",
           "COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH": "true"}
    with CourrielServer(tmp_path_factory.mktemp("trace"), users={ALICE: PW}, plaintext_auth=True, env=env) as s:
        asyncio.run(_set_apop(s.data))
        yield s


async def _set_apop(data: Path) -> None:
    store = await open_data_store(data)
    try:
        await store.set_apop_secret(ALICE, APOP_SECRET)
    finally:
        await store.close()


def traces(srv: CourrielServer) -> Path:
    return srv.data / "traces"


def message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = ALICE, ALICE, subject
    msg.set_content(BODY * 3)
    return msg


def secrets_absent(srv: CourrielServer) -> None:
    plain = base64.b64encode(f"\0{ALICE}\0{PW}".encode()).decode()
    forbidden = [PW, plain, base64.b64encode(PW.encode()).decode(), "BODY-SECRET-TEXT", APOP_SECRET]
    files = list(traces(srv).glob("*/*.jsonl"))
    assert files
    for f in files:
        text = f.read_text()
        for secret in forbidden:
            assert secret not in text, (f, secret)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_submission(srv: CourrielServer, mechanism: str) -> None:
    tap = Tap(srv.port("submission"))
    with smtplib.SMTP("127.0.0.1", tap.port) as smtp:
        smtp.ehlo("client.test")
        smtp.user, smtp.password = ALICE, PW
        smtp.auth(mechanism, smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login)
        smtp.send_message(message(f"via {mechanism}"))
    tap.join()
    entries = transcript_of(traces(srv), tap.upstream_port)
    check_against_wire(entries, tap.wire)
    texts = [e["text"] for e in entries]
    assert any(t.startswith("AUTH ") for t in texts)
    assert f"Subject: via {mechanism}" in texts
    assert any(t.startswith("<body: ") for t in texts)
    assert f"authenticated as {ALICE}" in texts
    secrets_absent(srv)


def test_imap_login_append_fetch(srv: CourrielServer) -> None:
    tap = Tap(srv.port("imap"))
    imap = imaplib.IMAP4("127.0.0.1", tap.port)
    imap.login(ALICE, PW)
    imap.append("INBOX", None, None, message("appended").as_bytes().replace(b"\n", b"\r\n"))
    imap.select("INBOX")
    typ, data = imap.fetch("1:*", "(BODY[] BODY[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"BODY-SECRET-TEXT" in b"".join(x[1] for x in data if isinstance(x, tuple))
    imap.logout()
    tap.join()
    entries = transcript_of(traces(srv), tap.upstream_port)
    check_against_wire(entries, tap.wire)
    texts = [e["text"] for e in entries]
    assert any(t.endswith(" LOGIN alice@example.test <redacted 20 octets>") for t in texts), texts[:6]
    assert "Subject: appended" in texts
    secrets_absent(srv)


def test_imap_authenticate(srv: CourrielServer) -> None:
    tap = Tap(srv.port("imap"))
    imap = imaplib.IMAP4("127.0.0.1", tap.port)
    imap.authenticate("PLAIN", lambda _challenge: f"\0{ALICE}\0{PW}".encode())
    imap.select("INBOX")
    imap.fetch("1", "(RFC822)")
    imap.logout()
    tap.join()
    entries = transcript_of(traces(srv), tap.upstream_port)
    check_against_wire(entries, tap.wire)
    assert any(e["text"].startswith("<redacted ") for e in entries if e["dir"] == "c")
    secrets_absent(srv)


@pytest.mark.parametrize("login", ["USER/PASS", "APOP"])
def test_pop3(srv: CourrielServer, login: str) -> None:
    tap = Tap(srv.port("pop3"))
    pop = poplib.POP3("127.0.0.1", tap.port)
    if login == "APOP":
        pop.apop(ALICE, APOP_SECRET)
    else:
        pop.user(ALICE)
        pop.pass_(PW)
    count, _ = pop.stat()
    assert count >= 1
    _, lines, _ = pop.retr(1)
    assert any(b"BODY-SECRET-TEXT" in line for line in lines)
    pop.top(1, 0)
    pop.quit()
    tap.join()
    entries = transcript_of(traces(srv), tap.upstream_port)
    check_against_wire(entries, tap.wire)
    texts = [e["text"] for e in entries]
    if login == "APOP":
        digest = hashlib.md5(b"x").hexdigest()
        assert any(t == f"APOP {ALICE} <redacted {len(digest)} octets>" for t in texts)
    else:
        assert f"PASS <redacted {len(PW)} octets>" in texts
    secrets_absent(srv)


def test_smtp_starttls_is_an_event(srv: CourrielServer) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(srv.cert))
    context.check_hostname = False
    tap = Tap(srv.port("submission"))
    with smtplib.SMTP("127.0.0.1", tap.port) as smtp:
        smtp.starttls(context=context)
        smtp.login(ALICE, PW)
        smtp.send_message(message("over TLS"))
    tap.join()
    entries = transcript_of(traces(srv), tap.upstream_port)
    texts = [e["text"] for e in entries]
    started = next(i for i, t in enumerate(texts) if t.startswith("TLS started: TLSv1."))
    assert texts[started - 1] == "TLS handshake" and texts[started - 2].startswith("220 ")
    assert texts.index("STARTTLS") < started < next(i for i, t in enumerate(texts) if t.startswith("AUTH "))
    assert "Subject: over TLS" in texts  # the plaintext inside TLS is transcribed, redacted
    assert b"Subject: over TLS" not in tap.wire["c"]  # while the wire carried ciphertext
    secrets_absent(srv)


def test_lmtp(srv: CourrielServer) -> None:
    tap = Tap(srv.port("lmtp"))
    with smtplib.LMTP("127.0.0.1", tap.port) as lmtp:
        lmtp.sendmail("sender@remote.test", [ALICE], message("via LMTP").as_bytes().replace(b"\n", b"\r\n"))
    tap.join()
    entries = transcript_of(traces(srv), tap.upstream_port)
    check_against_wire(entries, tap.wire)
    texts = [e["text"] for e in entries]
    assert texts[1].startswith("220 ") and any(t.upper().startswith("LHLO ") for t in texts)
    assert "Subject: via LMTP" in texts and any(t.startswith("<body: ") for t in texts)
    secrets_absent(srv)


def test_managesieve(srv: CourrielServer) -> None:
    import socket

    tap = Tap(srv.port("managesieve"))
    token = base64.b64encode(f"\0{ALICE}\0{PW}".encode())
    with socket.create_connection(("127.0.0.1", tap.port)) as sock:
        f = sock.makefile("rb")

        def until_status() -> bytes:
            while True:
                line = f.readline()
                if line.startswith((b"OK", b"NO", b"BYE")) or not line:
                    return line

        until_status()
        sock.sendall(b'AUTHENTICATE "PLAIN" "' + token + b'"\r\n')
        assert until_status().startswith(b"OK")
        sock.sendall(b'PUTSCRIPT "t" {5+}\r\nkeep;\r\n')
        assert until_status().startswith(b"OK")
        sock.sendall(b"LOGOUT\r\n")
        until_status()
    tap.join()
    entries = transcript_of(traces(srv), tap.upstream_port)
    check_against_wire(entries, tap.wire)
    texts = [e["text"] for e in entries]
    assert f'AUTHENTICATE "PLAIN" <redacted {len(token) + 2} octets>' in texts
    assert f"authenticated as {ALICE}" in texts and "keep;" in texts
    secrets_absent(srv)
