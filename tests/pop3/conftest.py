"""POP3 test fixtures: a real ``courriel serve`` (pop3 + pop3s) and mail put in through the store."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from courriel.store.api import INBOX, NewMessage
from tests.harness import CourrielServer, open_data_store
from tests.pop3.client import OPEN

PASSWORD = "pop-secret pw"  # a space inside: PASS takes the rest of the line
_counter = itertools.count(1)


def msg(subject: str, body: str = "Hello.\r\n", sender: str = "bob@example.test") -> bytes:
    return (
        f"From: Bob <{sender}>\r\nTo: someone@example.test\r\nSubject: {subject}\r\n"
        f"Date: Sun, 29 Nov 2026 00:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@example.test>\r\n"
        f"\r\n{body}"
    ).encode()


async def _add_user(data: Path, address: str, password: str, messages: Sequence[bytes], apop: str | None) -> None:
    store = await open_data_store(data)
    try:
        user = await store.add_user(address, password)
        if apop is not None:
            await store.set_apop_secret(address, apop)
        inbox = await store.get_mailbox(user.id, INBOX)
        assert inbox is not None
        if messages:
            await store.append_many(inbox.id, [NewMessage(m) for m in messages])
    finally:
        await store.close()


def new_user(srv: CourrielServer, messages: Sequence[bytes] = (), apop: str | None = None,
             password: str = PASSWORD) -> str:  # fmt: skip
    """A fresh account (through the store API, while the server runs) holding ``messages``."""
    address = f"u{next(_counter)}@{srv.domain}"
    asyncio.run(_add_user(srv.data, address, password, messages, apop))
    return address


async def _stored(data: Path, address: str) -> list[bytes]:
    store = await open_data_store(data)
    try:
        user = await store.get_user(address)
        assert user is not None
        inbox = await store.get_mailbox(user.id, INBOX)
        assert inbox is not None
        infos = await store.list_messages(inbox.id)
        records = await store.get_records(inbox.id, [i.uid for i in infos])
        return [await store.read_message(r.blob) for r in records]
    finally:
        await store.close()


def stored(srv: CourrielServer, address: str) -> list[bytes]:
    """The messages now in the account's INBOX, in UID order."""
    return asyncio.run(_stored(srv.data, address))


def client_tls(srv: CourrielServer) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(srv.cert))
    ctx.check_hostname = False
    return ctx


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    """pop3 with plaintext authentication allowed on loopback, and pop3s."""
    srv = CourrielServer(tmp_path_factory.mktemp("pop3"), users={}, only=("pop3", "pop3s"), plaintext_auth=True)
    with srv:
        yield srv


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    """pop3 as in production: passwords only under TLS."""
    srv = CourrielServer(tmp_path_factory.mktemp("pop3strict"), users={}, only=("pop3", "pop3s"))
    with srv:
        yield srv


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


async def _append(data: Path, address: str, message: bytes) -> None:
    store = await open_data_store(data)
    try:
        user = await store.get_user(address)
        assert user is not None
        inbox = await store.get_mailbox(user.id, INBOX)
        assert inbox is not None
        await store.append(inbox.id, message)
    finally:
        await store.close()


def _add_message(srv: CourrielServer, address: str, message: bytes) -> None:
    asyncio.run(_append(srv.data, address, message))
