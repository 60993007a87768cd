"""LMTP (RFC 2033): the SMTP session with LHLO and one reply per recipient after the message.

An MTA in front of courriel (Postfix, Exim, Sendmail) hands over mail it has already queued;
LMTP lets courriel say, for each recipient, whether it now holds the message (250) or not
(4xx: the MTA keeps it and retries that recipient only; 5xx: the MTA bounces it). Everything
else is the SMTP session: the parser, the stream, PIPELINING, CHUNKING, size and line
limits, the checks of the message (bare CR/LF, loops) and the MDA path of
:mod:`courriel.delivery.local` (aliases, quotas, Return-Path and Received, durable store).

What differs from SMTP, by RFC 2033 section:
- §4.1: LHLO replaces EHLO; HELO and EHLO are refused (500).
- §4.2: after DATA (and BDAT LAST, RFC 3030 with LMTP) one reply per accepted RCPT, in
  RCPT order. Each 250 is sent only once that recipient's copy is durable.
- No AUTH, no STARTTLS, no relaying: only local recipients are accepted; the listener is for
  the MTA on the same host (a Unix socket or loopback TCP, see :mod:`courriel.lmtp.server`).
- No SPF/DKIM/DMARC or spam checks: the MTA in front received the message from the Internet
  and is the one placed to check it (the peer here is the MTA itself). Sieve scripts run
  (through :func:`courriel.delivery.local.deliver`); mail an alias forwards outside is
  queued with the sender rewritten (SRS), as the MX does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar

from courriel.auth.limits import AuthLimiter
from courriel.delivery import local
from courriel.delivery.local import LocalTarget, ResolveError, TraceInfo
from courriel.net import Connection
from courriel.sieve.delivery import MessageRejected
from courriel.smtp import protocol as p
from courriel.smtp import session as smtp
from courriel.smtp import transaction
from courriel.smtp.protocol import Reply, SmtpError, err
from courriel.smtp.session import Handler, Policy, Session, State, Transaction
from courriel.store.api import QueueRecipient, QuotaExceeded, Store

log = logging.getLogger("courriel.lmtp")


@dataclass
class Route:
    """Where one accepted RCPT goes: its local INBOXes and the external addresses of its aliases."""

    address: str
    local: list[LocalTarget] = field(default_factory=list)
    external: list[QueueRecipient] = field(default_factory=list)


class LmtpSession(Session):
    banner: ClassVar[str] = "LMTP"

    def __init__(
        self, conn: Connection, policy: Policy, store: Store, auth_limiter: AuthLimiter
    ) -> None:
        super().__init__(conn, policy, store, auth_limiter)
        self.routes: list[Route] = []  # one per accepted RCPT of the current transaction
        self.routes_tx = ""

    def routes_of(self, tx: Transaction) -> list[Route]:
        if self.routes_tx != tx.id:
            self.routes, self.routes_tx = [], tx.id
        return self.routes

    async def finish(self, tx: Transaction, message: bytes) -> None:
        await finish(self, tx, message)


async def cmd_lhlo(s: Session, arg: str) -> None:
    name = p.parse_helo(arg)
    s.reset_transaction()
    s.helo, s.esmtp, s.state = name, True, State.READY
    s.reply(
        250,
        None,
        (
            f"{s.policy.hostname} greets {name}",
            "PIPELINING",
            f"SIZE {s.policy.max_size}",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
        ),
    )


async def cmd_helo(s: Session, arg: str) -> None:
    # RFC 2033 §4.1: an SMTP client reaching an LMTP server by mistake must not deliver.
    raise err(500, "5.5.1", "This is an LMTP server: use LHLO")


async def cmd_help(s: Session, arg: str) -> None:
    s.reply(
        214,
        "2.0.0",
        ("Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP", "See RFC 2033"),
    )


async def cmd_rcpt(s: Session, arg: str) -> None:
    assert isinstance(s, LmtpSession) and s.tx is not None
    tx = s.tx
    routes = s.routes_of(tx)
    if len(tx.rcpts) >= s.policy.limits.max_recipients:
        raise err(452, "4.5.3", "Too many recipients")  # RFC 5321 §4.5.3.1.10
    rcpt = p.parse_rcpt_to(arg, tx.mail.smtputf8, s.policy.domain)
    try:
        route = await _route(s, tx, rcpt)
    except SmtpError:
        tx.rejected.append(rcpt.address)
        raise
    routes.append(route)
    for target in route.local:
        tx.local.setdefault(target.inbox_id, target)
    for q in route.external:
        tx.external.setdefault(q.address.lower(), q)
    tx.rcpts.append(rcpt.address)
    s.state = State.RCPT
    s.reply(250, "2.1.5", "Recipient OK")


async def _route(s: Session, tx: Transaction, rcpt: p.RcptTo) -> Route:
    if not await s.resolver.is_local(local.domain_of(rcpt.address)):
        raise err(550, "5.1.2", "Not a local domain")  # LMTP never relays
    notify = ",".join(rcpt.notify) or None
    try:
        resolution = await s.resolver.resolve(rcpt.address)
    except ResolveError as exc:
        if exc.kind == "unknown":
            original = s.policy.srs.reverse(rcpt.address) if s.policy.srs is not None else None
            if original is not None:  # SRS: a bounce to mail an alias forwarded goes back
                return Route(rcpt.address, [], [QueueRecipient(original, notify, rcpt.orcpt)])
            raise err(550, "5.1.1", "User unknown") from None
        raise err(550, "5.4.6", f"Routing loop or alias too large: {exc}") from None
    for target in resolution.local:
        if target.quota_bytes and (tx.mail.size or 0) > target.quota_bytes:
            # Larger than the whole quota: it can never fit (RFC 3463 §3.3: 5.2.2 permanent).
            raise err(552, "5.2.2", "Mailbox full: message larger than the recipient's quota")
        if await s.resolver.over_quota(target, tx.mail.size or 0):
            raise err(452, "4.2.2", "Mailbox full")
    orcpt = rcpt.orcpt or f"rfc822;{rcpt.address}"
    external = [QueueRecipient(a, notify, orcpt) for a in resolution.external]
    return Route(rcpt.address, list(resolution.local), external)


async def cmd_data(s: Session, arg: str) -> None:
    await _per_recipient(s, arg, transaction.cmd_data)


async def cmd_bdat(s: Session, arg: str) -> None:
    await _per_recipient(s, arg, transaction.cmd_bdat)


async def _per_recipient(s: Session, arg: str, handler: Handler) -> None:
    """RFC 2033 §4.2: once the message is in, a refusal of it is repeated for each recipient.

    The SMTP handlers end the transaction (``s.tx = None``) exactly when they refuse a
    received message; refusals before it (no recipients, syntax, a BDAT chunk that is not
    the last) keep it and get the single reply of SMTP."""
    tx = s.tx
    try:
        await handler(s, arg)
    except SmtpError as exc:
        if tx is None or s.tx is not None or not tx.rcpts:
            raise
        for _ in tx.rcpts:
            s.out.reply(exc.reply)


async def finish(s: LmtpSession, tx: Transaction, message: bytes) -> None:
    """Store the message for each recipient, in RCPT order, and reply for each.

    The common case is one store write shared by every local recipient (all-or-none); when
    that fails for a reason one recipient may cause (quota), each recipient is stored on its
    own, so that one full mailbox defers only its own recipient."""
    transaction.check_message(s, tx, message)
    routes = s.routes_of(tx)
    info = TraceInfo(
        helo=s.helo, peer_ip=s.conn.peer_ip or "127.0.0.1", hostname=s.policy.hostname,
        protocol=_protocol_name(s, tx), queue_id=tx.id, tls=s.conn.tls_info(),
    )  # fmt: skip
    replies: list[Reply]
    try:
        await _store(s, tx, message, info, routes, tx.rcpts)
        replies = [Reply(250, "2.0.0", f"<{r.address}> delivered as {tx.id}") for r in routes]
    except (QuotaExceeded, MessageRejected):
        replies = []
        done: set[int] = set()
        for route in routes:
            replies.append(await _store_one(s, tx, message, info, route, done))
    except Exception:
        # Store failure or a bug: every recipient still gets its reply (the MTA counts them,
        # RFC 2033 §4.2) and retries later.
        log.exception("lmtp id=%s: storing failed", tx.id)
        replies = [
            Reply(451, "4.3.0", "Local error in processing, try again later") for _ in routes
        ]
    s.messages += 1
    codes = " ".join(str(r.code) for r in replies)
    s.log_transaction(tx, len(message), f"per recipient: {codes}")
    s.tx = None
    s.state = State.READY
    for r in replies:
        s.out.reply(r)


async def _store(
    s: LmtpSession,
    tx: Transaction,
    message: bytes,
    info: TraceInfo,
    routes: list[Route],
    rcpts: list[str],
) -> None:
    """Durably store ``message`` for ``routes`` (local INBOXes once each, externals queued)."""
    targets: dict[int, LocalTarget] = {}
    external: dict[str, QueueRecipient] = {}
    for route in routes:
        for t in route.local:
            targets.setdefault(t.inbox_id, t)
        for q in route.external:
            external.setdefault(q.address.lower(), q)
    received = local.received_header(info, rcpts)
    mail = tx.mail
    if targets:
        data = local.return_path(mail.address) + received + message
        await local.deliver(
            s.store, data, mail.address, list(targets.values()), hostname=s.policy.hostname
        )
    if external:
        srs = s.policy.srs
        await local.enqueue(
            s.store, received + message, srs.forward(mail.address) if srs is not None else mail.address,
            list(external.values()),
            envid=mail.envid, ret=mail.ret, smtputf8=mail.smtputf8, body_8bit=mail.body == "8BITMIME",
            auth_user=None, source=tx.id,
        )  # fmt: skip


async def _store_one(
    s: LmtpSession, tx: Transaction, message: bytes, info: TraceInfo, route: Route, done: set[int]
) -> Reply:
    """One recipient alone (after a shared write failed); ``done`` avoids a second copy in an
    INBOX that an earlier recipient of the same message already filled."""
    mine = Route(route.address, [t for t in route.local if t.inbox_id not in done], route.external)
    try:
        await _store(s, tx, message, info, [mine], [route.address])
    except QuotaExceeded:
        if any(t.quota_bytes and len(message) > t.quota_bytes for t in mine.local):
            # Larger than the whole quota: it can never fit (RFC 3463 §3.3: 5.2.2 permanent).
            return Reply(
                552, "5.2.2", f"<{route.address}> mailbox full: message larger than the quota"
            )
        return Reply(452, "4.2.2", f"<{route.address}> mailbox full, try again later")
    except MessageRejected as exc:
        # RFC 5429 §2.2: a Sieve ereject refuses in the protocol, here for this recipient only.
        reason = " ".join(exc.reason.split())[:200] or "Message rejected"
        return Reply(550, "5.7.1", f"<{route.address}> {reason}")
    except Exception:
        log.exception("lmtp id=%s: storing for <%s> failed", tx.id, route.address)
        return Reply(451, "4.3.0", f"<{route.address}> local error in processing, try again later")
    done.update(t.inbox_id for t in mine.local)
    return Reply(250, "2.0.0", f"<{route.address}> delivered as {tx.id}")


def _protocol_name(s: Session, tx: Transaction) -> str:
    """RFC 3848 'with' keywords for LMTP (UTF8LMTP from RFC 6531 §3.7.3)."""
    name = "UTF8LMTP" if tx.mail.smtputf8 else "LMTP"
    return name + ("S" if s.tls else "")


_ALWAYS = frozenset({"LHLO", "HELO", "EHLO", "NOOP", "RSET", "QUIT", "VRFY", "EXPN", "HELP"})
#: Commands allowed in each state (RFC 2033 §4.1: LHLO first, as EHLO in SMTP).
ALLOWED: dict[State, frozenset[str]] = {
    State.FRESH: _ALWAYS,
    State.READY: _ALWAYS | {"MAIL"},
    State.MAIL: _ALWAYS | {"RCPT", "DATA", "BDAT"},
    State.RCPT: _ALWAYS | {"RCPT", "DATA", "BDAT"},
}

HANDLERS: dict[str, Handler] = {
    **{verb: smtp.HANDLERS[verb] for verb in ("NOOP", "RSET", "QUIT", "VRFY", "EXPN", "MAIL")},
    "LHLO": cmd_lhlo,
    "HELO": cmd_helo,
    "EHLO": cmd_helo,
    "HELP": cmd_help,
    "RCPT": cmd_rcpt,
    "DATA": cmd_data,
    "BDAT": cmd_bdat,
}

LmtpSession.handlers, LmtpSession.allowed = HANDLERS, ALLOWED
