"""Sieve delivery fixtures: one server (smtp, imap, managesieve; no outbound worker, so the
queue keeps what scripts send), scripts installed with sievelib's ManageSieve client, mail
sent with smtplib and read back over IMAP (imaplib) and from the store (the queue)."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sievelib.managesieve import Client

from courriel.store.api import QueuedMessage
from tests.harness import CourrielServer, open_data_store

USERS = {f"{n}@example.test": f"{n}-pw" for n in ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "quota")}


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    root = tmp_path_factory.mktemp("sieve")
    env = {"COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH": "true"}
    srv = CourrielServer(root, users=dict(USERS), only=("smtp", "imap", "managesieve"), env=env, plaintext_auth=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def install(srv: CourrielServer, user: str, script: str, name: str = "main") -> None:
    """PUTSCRIPT and SETACTIVE through sievelib (a ManageSieve client we did not write)."""
    client = Client("127.0.0.1", srv.port("managesieve"))
    with warnings.catch_warnings():
        # Plaintext on loopback (managesieve.allow_plaintext_auth); STARTTLS is tested with sieve-connect.
        warnings.simplefilter("ignore", UserWarning)
        assert client.connect(user, USERS[user], authmech="PLAIN")
    try:
        assert client.putscript(name, script), client.errmsg
        assert client.setactive(name), client.errmsg
    finally:
        client.logout()


def message(subject: str, sender: str = "bob@example.org", to: str = "alice@example.test",
            body: str = "hello", extra: str = "") -> bytes:  # fmt: skip
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{uuid.uuid4().hex}@example.org>\r\n"
        f"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n{extra}\r\n{body}\r\n"
    ).encode()


def send(srv: CourrielServer, data: bytes, rcpts: list[str], sender: str = "bob@example.org") -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(sender, rcpts, data)


def imap(srv: CourrielServer, user: str) -> imaplib.IMAP4:
    conn = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=30)
    conn.login(user, USERS[user])
    return conn


def mailbox(srv: CourrielServer, user: str, name: str) -> list[tuple[bytes, bytes]]:
    """(flags, message) for every message of a mailbox, over IMAP."""
    conn = imap(srv, user)
    try:
        typ, count = conn.select(f'"{name}"', readonly=True)
        if typ != "OK" or count[0] == b"0":
            return []
        typ, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[])")
        out = []
        for item in data:
            if isinstance(item, tuple):
                out.append((item[0], item[1]))
        return out
    finally:
        conn.logout()


def subjects(srv: CourrielServer, user: str, name: str) -> list[str]:
    out = []
    for _, msg in mailbox(srv, user, name):
        for line in msg.split(b"\r\n"):
            if line.lower().startswith(b"subject: "):
                out.append(line[9:].decode())
                break
    return out


async def _queue(data: Path) -> list[tuple[QueuedMessage, bytes]]:
    store = await open_data_store(data)
    try:
        return [(q, await store.read_message(q.blob)) for q in await store.list_queue()]
    finally:
        await store.close()


def queue(srv: CourrielServer) -> list[tuple[QueuedMessage, bytes]]:
    """The outbound queue (what scripts sent), read through the store API."""
    return asyncio.run(_queue(srv.data))
