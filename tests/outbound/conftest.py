"""Outbound fixtures: the test DNS server, a scriptable remote MX (aiosmtpd), and a courriel
server whose outbound service resolves through the test DNS and delivers to loopback ports."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as AioSMTP
from aiosmtpd.smtp import Envelope as AioEnvelope
from aiosmtpd.smtp import Session as AioSession

from courriel.store.api import INBOX
from tests.harness import CourrielServer, free_port, open_data_store
from tests.outbound.dnsserver import DnsServer


@dataclass
class Received:
    mail_from: str
    rcpts: list[str]
    data: bytes
    mail_options: list[str]
    login: bytes | None = None  # who authenticated (AUTH), if anyone


@dataclass
class Sink:
    """A remote MX: replies can be scripted per recipient (RCPT) and per attempt (DATA)."""

    port: int
    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)  # address -> replies to pop
    data_replies: list[str] = field(default_factory=list)  # popped per DATA; empty: 250
    attempts: int = 0
    sessions: int = 0  # EHLOs seen: connections reused show as fewer sessions than messages
    #: DATA attempt number ``hold_at`` waits for ``hold`` to be set before replying (a test
    #: can then look at the queue while the attempt is in progress, without a race).
    hold: threading.Event | None = None
    hold_at: int = 0

    async def handle_EHLO(self, server: AioSMTP, session: AioSession, envelope: AioEnvelope, hostname: str,
                          responses: list[str]) -> list[str]:  # fmt: skip
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: AioSMTP, session: AioSession, envelope: AioEnvelope, address: str,
                          options: list[str]) -> str:  # fmt: skip
        script = self.rcpt_replies.get(address.lower())
        if script:
            reply = script.pop(0) if len(script) > 1 else script[0]
            if not reply.startswith("2"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: AioSMTP, session: AioSession, envelope: AioEnvelope) -> str:
        self.attempts += 1
        if self.hold is not None and self.attempts == self.hold_at:
            await asyncio.get_running_loop().run_in_executor(None, self.hold.wait, 60)
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("2"):
                return reply
        assert isinstance(envelope.content, bytes)
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content,
                                      list(envelope.mail_options), session.auth_data if session.authenticated else None))  # fmt: skip
        return "250 2.0.0 OK accepted"


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink(free_port())
    ctl = Controller(s, hostname="127.0.0.1", port=s.port, decode_data=False, enable_SMTPUTF8=True)
    ctl.start()
    try:
        yield s
    finally:
        ctl.stop()


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def outbound_env(dns: DnsServer, port: int, **extra: str) -> dict[str, str]:
    env = {
        "COURRIEL_OUTBOUND_ENABLED": "true",
        "COURRIEL_OUTBOUND_DNS": dns.address,
        "COURRIEL_OUTBOUND_PORT": str(port),
        "COURRIEL_OUTBOUND_RETRY_BASE": "1",
        "COURRIEL_OUTBOUND_RETRY_MAX": "2",
        "COURRIEL_OUTBOUND_POLL_MS": "100",
        "COURRIEL_OUTBOUND_TIMEOUT": "20",
    }
    env.update(extra)
    return env


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until ``check()`` is truthy (the test's own limit; no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def _inbox(data: Path, address: str, mailbox: str) -> list[bytes]:
    store = await open_data_store(data)
    try:
        user = await store.get_user(address)
        assert user is not None
        box = await store.get_mailbox(user.id, mailbox)
        if box is None:
            return []
        infos = await store.list_messages(box.id)
        found = await store.read_messages(box.id, [i.uid for i in infos])
        return [found[i.uid] for i in infos]
    finally:
        await store.close()


def inbox(srv: CourrielServer, address: str, mailbox: str = INBOX) -> list[bytes]:
    return asyncio.run(_inbox(srv.data, address, mailbox))


def parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def queue_listing(srv: CourrielServer) -> str:
    return srv.cli("queue", "list").stdout
