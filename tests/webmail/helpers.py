"""Shared by the webmail tests: a logged-in httpx client, SMTP delivery, store filling."""

from __future__ import annotations

import asyncio
import re
import smtplib
import threading
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

import httpx

from courriel.store.api import NewMessage
from courriel.store.sqlite.store import SQLiteStore
from tests.harness import CourrielServer

ARTIFACTS = Path(__file__).parent / "artifacts"


def base_url(srv: CourrielServer) -> str:
    return f"http://127.0.0.1:{srv.port('http')}"


def login_token(client: httpx.Client) -> str:
    r = client.get("/login")
    m = re.search(r'name="login_token" value="([^"]+)"', r.text)
    assert m, r.text
    return m.group(1)


def login(srv: CourrielServer, user: str = "alice@example.test", password: str = "alice-pw") -> httpx.Client:
    client = httpx.Client(base_url=base_url(srv), timeout=30)
    token = login_token(client)
    r = client.post("/login", data={"username": user, "password": password, "login_token": token, "next": "/mail/"})
    assert r.status_code == 303, r.text
    return client


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m
    return m.group(1)


def deliver(srv: CourrielServer, rcpt: str, data: bytes, sender: str = "someone@remote.test") -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(sender, [rcpt], data)


def text_message(subject: str, body: str, sender: str = "Someone <someone@remote.test>",
                 to: str = "alice@example.test", msgid: str | None = None) -> bytes:  # fmt: skip
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if msgid:
        msg["Message-ID"] = msgid
    msg.set_content(body)
    return msg.as_bytes().replace(b"\n", b"\r\n")


def html_message(subject: str, html: str, to: str = "alice@example.test") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <someone@remote.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("plain alternative")
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes().replace(b"\n", b"\r\n")


def append_many(srv: CourrielServer, user: str, mailbox: str, items: Sequence[bytes]) -> None:
    """Append to a mailbox straight through the store (another process; SQLite WAL)."""

    async def run() -> None:
        store = await SQLiteStore.open(srv.data / "courriel.db", srv.data / "blobs")
        try:
            account = await store.get_user(user)
            assert account is not None
            box = await store.get_mailbox(account.id, mailbox)
            assert box is not None
            for i in range(0, len(items), 500):
                await store.append_many(box.id, [NewMessage(d) for d in items[i : i + 500]])
        finally:
            await store.close()

    # A thread of its own: Playwright's sync API keeps an event loop on this one.
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
