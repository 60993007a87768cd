"""Authenticated submission from outside SMTP: JMAP EmailSubmission/set and the webmail.

The same rules and the same path as an authenticated SMTP submission
(``courriel.smtp.transaction``): the sender may only use its own addresses (envelope and
From/Sender, else ``553 5.7.1``); local recipients are resolved through aliases and delivered
once with ``Return-Path`` and ``Received`` (Sieve applies); remote ones go to the outbound queue;
everything is durable before :func:`submit` returns. Errors carry the SMTP reply a submission
client would have had, so callers can show one consistent reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from courriel.delivery import local
from courriel.delivery.local import LocalTarget, ResolveError, Resolver, TraceInfo
from courriel.mime.address import parse_addresses
from courriel.mime.headers import scan_header
from courriel.sieve.delivery import MessageRejected
from courriel.store.api import QueueRecipient, QuotaExceeded, Store

#: Received headers beyond this count mean a loop (as in SMTP).
MAX_HOPS = 50


class SubmitError(Exception):
    """Why a submission was refused, as the SMTP reply it corresponds to."""

    def __init__(self, code: int, status: str, text: str, recipient: str | None = None) -> None:
        super().__init__(f"{code} {status} {text}")
        self.code = code
        self.status = status
        self.text = text
        self.recipient = recipient

    @property
    def temporary(self) -> bool:
        return self.code < 500


@dataclass
class Submitted:
    id: str
    delivered: list[str] = field(default_factory=list)  # local recipients
    queued: list[str] = field(default_factory=list)  # remote recipients
    queue_id: int | None = None


def _check_lines(message: bytes) -> bytes:
    """Only CRLF line ends; returns the header block."""
    if b"\r" in message.replace(b"\r\n", b"") or b"\n" in message.replace(b"\r\n", b""):
        raise SubmitError(550, "5.6.0", "Bare CR or LF in message; lines must end with CRLF")
    end = message.find(b"\r\n\r\n")
    header = message[: end + 2] if end >= 0 else message
    if header.count(b"\nReceived:") + header.startswith(b"Received:") > MAX_HOPS:
        raise SubmitError(554, "5.4.6", "Too many Received headers: mail loop")
    return header


async def submit(
    store: Store,
    auth_user: str,
    mail_from: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    hostname: str,
    protocol: str = "HTTPSA",
    peer_ip: str = "127.0.0.1",
    client_name: str = "webmail",
    resolver: Resolver | None = None,
    envid: str | None = None,
) -> Submitted:
    """Deliver and queue ``message`` for ``auth_user``; durable on return, or SubmitError."""
    if not recipients:
        raise SubmitError(554, "5.5.1", "No valid recipients")
    resolver = resolver or Resolver(store)
    header = _check_lines(message)
    if mail_from and not await resolver.owns(auth_user, mail_from):
        raise SubmitError(553, "5.7.1", f"Sender address not owned by {auth_user}")
    fields, _ = scan_header(header, 0, len(header))
    for name, raw in fields:
        if name.lower() in ("from", "sender"):
            for _, address in parse_addresses(raw):
                if not await resolver.owns(auth_user, address):
                    raise SubmitError(553, "5.7.1", f"From address {address} not owned by {auth_user}")
    targets: dict[int, LocalTarget] = {}
    external: dict[str, QueueRecipient] = {}
    delivered: list[str] = []
    for rcpt in recipients:
        domain = local.domain_of(rcpt)
        if not await resolver.is_local(domain):
            external.setdefault(rcpt.lower(), QueueRecipient(rcpt))
            continue
        try:
            resolution = await resolver.resolve(rcpt)
        except ResolveError as exc:
            if exc.kind == "unknown":
                raise SubmitError(550, "5.1.1", "User unknown", rcpt) from None
            raise SubmitError(550, "5.4.6", f"Routing loop or alias too large: {exc}", rcpt) from None
        for target in resolution.local:
            if target.quota_bytes and len(message) > target.quota_bytes:
                raise SubmitError(552, "5.2.2", "Mailbox full: message larger than the recipient's quota", rcpt)
            targets.setdefault(target.inbox_id, target)
        for address in resolution.external:
            external.setdefault(address.lower(), QueueRecipient(address, None, f"rfc822;{rcpt}"))
        delivered.append(rcpt)
    tx_id = secrets.token_hex(6).upper()
    info = TraceInfo(
        helo=client_name, peer_ip=peer_ip, hostname=hostname, protocol=protocol, queue_id=tx_id, auth_user=auth_user
    )
    received = local.received_header(info, list(recipients))
    queue_id = None
    try:
        if targets:
            data = local.return_path(mail_from) + received + message
            await local.deliver(store, data, mail_from, list(targets.values()), hostname=hostname)
        if external:
            queue_id = await local.enqueue(
                store, received + message, mail_from, list(external.values()), envid=envid, ret=None,
                smtputf8=not message.isascii(), body_8bit=not message.isascii(), auth_user=auth_user, source=tx_id,
            )  # fmt: skip
    except MessageRejected as exc:
        raise SubmitError(550, "5.7.1", " ".join(exc.reason.split())[:400] or "Message rejected") from None
    except QuotaExceeded:
        raise SubmitError(452, "4.2.2", "Mailbox full, try again later") from None
    return Submitted(tx_id, delivered, [q.address for q in external.values()], queue_id)
