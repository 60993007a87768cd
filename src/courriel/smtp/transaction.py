"""The mail transaction: MAIL, RCPT, DATA and BDAT, and what happens to an accepted message.

Who may send what (never an open relay):
- Recipients in a local domain are accepted when they resolve (users, aliases, catch-alls);
  an unknown one gets 550 5.1.1 at RCPT.
- Remote recipients only from an authenticated session; they go to the outbound queue.
- An authenticated user may only use its own addresses (its address, or an alias pointing
  to it) as envelope sender and in From (553 5.7.1 otherwise).
- Submission listeners require AUTH before MAIL (RFC 6409 §4.1, 530 5.7.0).

The message is durable (fsynced and committed) before the 250 reply (RFC 5321 §6.1).
"""

from __future__ import annotations

import dataclasses
import logging

from courriel.delivery import local
from courriel.delivery.local import ResolveError, TraceInfo
from courriel.mime.address import parse_addresses
from courriel.mime.headers import scan_header
from courriel.sieve.delivery import MessageRejected
from courriel.smtp import protocol as p
from courriel.smtp.protocol import Reply, SmtpError, err
from courriel.smtp.session import Session, State, Transaction, new_id
from courriel.store.api import NotFound, QueueRecipient, QuotaExceeded, StoreError

log = logging.getLogger("courriel.smtp")

#: RFC 5321 §6.3: too many Received lines means a mail loop.
MAX_HOPS = 50


async def cmd_mail(s: Session, arg: str) -> None:
    if s.policy.auth_required and s.auth_user is None:
        raise err(530, "5.7.0", "Authentication required")
    if s.messages >= s.policy.limits.max_messages_per_session:
        raise err(421, "4.7.0", "Too many messages in one session, closing", close=True)
    mail = p.parse_mail_from(arg, s.policy.max_size)
    if mail.smtputf8 and not s.esmtp:
        raise err(555, "5.5.4", "SMTPUTF8 needs EHLO")
    if s.auth_user is not None and (mail.address == "" or not await s.resolver.owns(s.auth_user, mail.address)):
        raise err(553, "5.7.1", f"Sender address not owned by {s.auth_user}")
    s.tx = Transaction(new_id(), mail)
    s.state = State.MAIL
    s.reply(250, "2.1.0", "Sender OK")


async def cmd_rcpt(s: Session, arg: str) -> None:
    tx = s.tx
    assert tx is not None
    if len(tx.rcpts) >= s.policy.limits.max_recipients:
        raise err(452, "4.5.3", "Too many recipients")  # RFC 5321 §4.5.3.1.10
    rcpt = p.parse_rcpt_to(arg, tx.mail.smtputf8, s.policy.domain)
    try:
        await _accept_recipient(s, tx, rcpt)
    except SmtpError:
        tx.rejected.append(rcpt.address)
        raise
    tx.rcpts.append(rcpt.address)
    s.state = State.RCPT
    s.reply(250, "2.1.5", "Recipient OK")


async def _accept_recipient(s: Session, tx: Transaction, rcpt: p.RcptTo) -> None:
    notify = ",".join(rcpt.notify) or None
    domain = local.domain_of(rcpt.address)
    if not await s.resolver.is_local(domain):
        if s.auth_user is None:
            raise err(554, "5.7.1", "Relay access denied")
        tx.external.setdefault(rcpt.address.lower(), QueueRecipient(rcpt.address, notify, rcpt.orcpt))
        return
    try:
        resolution = await s.resolver.resolve(rcpt.address)
    except ResolveError as exc:
        if exc.kind == "unknown":
            original = s.policy.srs.reverse(rcpt.address) if s.policy.srs is not None else None
            if original is not None:  # SRS: a reply or bounce to forwarded mail goes back to its sender
                tx.external.setdefault(original.lower(), QueueRecipient(original, notify, rcpt.orcpt))
                return
            raise err(550, "5.1.1", "User unknown") from None
        raise err(550, "5.4.6", f"Routing loop or alias too large: {exc}") from None
    for target in resolution.local:
        if target.quota_bytes and (tx.mail.size or 0) > target.quota_bytes:
            # Larger than the whole quota: it can never fit (RFC 3463 §3.3: 5.2.2 permanent).
            raise err(552, "5.2.2", "Mailbox full: message larger than the recipient's quota")
        if target.inbox_id not in tx.local and await s.resolver.over_quota(target, tx.mail.size or 0):
            raise err(452, "4.2.2", "Mailbox full")
    for target in resolution.local:
        tx.local.setdefault(target.inbox_id, target)
    # External targets of an alias: the original recipient is kept as ORCPT (RFC 3461 §4.2).
    orcpt = rcpt.orcpt or f"rfc822;{rcpt.address}"
    for address in resolution.external:
        tx.external.setdefault(address.lower(), QueueRecipient(address, notify, orcpt))


def _need_recipients(s: Session) -> Transaction:
    tx = s.tx
    assert tx is not None
    if s.state is not State.RCPT:
        raise err(554, "5.5.1", "No valid recipients")
    return tx


async def cmd_data(s: Session, arg: str) -> None:
    if arg.strip():
        raise p.syntax("DATA takes no argument")
    tx = _need_recipients(s)
    if tx.bdat is not None:
        raise err(503, "5.5.1", "DATA not allowed after BDAT")  # RFC 3030 §3
    s.out.reply(p.START_DATA)
    s.input.timeout = s.policy.limits.data_timeout
    try:
        content, size = await s.input.data(s.policy.max_size)
    finally:
        s.input.timeout = s.policy.limits.command_timeout
    if size > s.policy.max_size:
        _fail(s, tx, size, err(552, "5.3.4", "Message size exceeds fixed maximum message size"))
    if content[:1] == b".":
        content = content[1:]
    message = content.replace(b"\r\n.", b"\r\n") if b"\r\n." in content else content
    await s.finish(tx, message)


async def cmd_bdat(s: Session, arg: str) -> None:
    size, last = p.parse_bdat(arg)
    tx = s.tx
    assert tx is not None
    keep = tx.bdat_failed is None and s.state is State.RCPT
    total = (len(tx.bdat) if tx.bdat is not None else 0) + size
    if total > s.policy.max_size:
        keep = False
        tx.bdat_failed = tx.bdat_failed or Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
    s.input.timeout = s.policy.limits.data_timeout
    try:
        chunk = await s.input.exact(size, keep)
    finally:
        s.input.timeout = s.policy.limits.command_timeout
    if s.state is not State.RCPT:
        raise err(554, "5.5.1", "No valid recipients")
    if tx.bdat is None:
        tx.bdat = bytearray()
    if tx.bdat_failed is not None:
        # RFC 3030 §2: once a chunk failed, the rest of the message is refused too.
        if last:
            _fail(s, tx, total, SmtpError(tx.bdat_failed.code, tx.bdat_failed.enhanced or "", str(tx.bdat_failed.text)))
        s.out.reply(tx.bdat_failed)
        return
    tx.bdat += chunk
    if not last:
        s.reply(250, "2.0.0", f"{size} octets received")
        return
    await s.finish(tx, bytes(tx.bdat))


def _fail(s: Session, tx: Transaction, size: int, exc: SmtpError) -> None:
    """End the transaction with a refusal (logged) and raise it."""
    s.log_transaction(tx, size, f"refused {exc.reply.code} {exc.reply.enhanced}")
    s.tx = None
    s.state = State.READY
    raise exc


def check_message(s: Session, tx: Transaction, message: bytes) -> bytes:
    """Refuse what no MTA should pass on (bare CR/LF, long lines, loops); returns the header."""
    size = len(message)
    scan = p.scan_message(message, s.policy.max_line)
    if scan.bare_lf or scan.bare_cr:
        # RFC 5321 §2.3.8 and §4.1.1.4: only CRLF ends a line and only CRLF.CRLF ends DATA;
        # bare CR or LF is refused so that no other MTA can see a different end (smuggling).
        _fail(s, tx, size, err(550, "5.6.0", "Bare CR or LF in message; lines must end with CRLF"))
    if scan.long_line:
        _fail(s, tx, size, err(550, "5.6.0", f"Line longer than {s.policy.max_line} octets"))
    header_end = message.find(b"\r\n\r\n")
    header = message[: header_end + 2] if header_end >= 0 else message
    if header.count(b"\nReceived:") + header.startswith(b"Received:") > MAX_HOPS:
        _fail(s, tx, size, err(554, "5.4.6", "Too many Received headers: mail loop"))
    return header


async def finish(s: Session, tx: Transaction, message: bytes) -> None:
    """Check the message, deliver and queue it durably, reply 250 with the transaction id."""
    size = len(message)
    header = check_message(s, tx, message)
    if s.auth_user is not None:
        await _check_from(s, tx, header, size)
    checked = b""
    if s.auth_user is None and s.policy.checker is not None:
        verdict = await s.policy.checker.check(message, s.conn.peer_ip, s.helo, tx.mail.address)
        if verdict.reject is not None:
            _fail(s, tx, size, err(550, "5.7.1", verdict.reject))
        checked, message = verdict.header, verdict.message
        if verdict.quarantine:
            tx.local = {t.inbox_id: t for t in [await _junk(s, t) for t in tx.local.values()]}
    junk = False
    if s.auth_user is None and s.policy.spam is not None and tx.local:
        spam = await s.policy.spam.check(
            message, mail_from=tx.mail.address, rcpts=tx.rcpts, ip=s.conn.peer_ip, helo=s.helo,
            hostname=s.policy.hostname, queue_id=tx.id,
        )  # fmt: skip
        if spam is not None:
            if spam.reject:
                _fail(s, tx, size, err(554, "5.7.1", "Message refused as spam"))
            checked += spam.header()
            junk = spam.junk
    info = TraceInfo(
        helo=s.helo,
        peer_ip=s.conn.peer_ip,
        hostname=s.policy.hostname,
        protocol=_protocol_name(s, tx),
        queue_id=tx.id,
        tls=s.conn.tls_info(),
        auth_user=s.auth_user,
    )
    received = local.received_header(info, tx.rcpts)
    mail = tx.mail
    try:
        if tx.local:
            data = local.return_path(mail.address) + checked + received + message
            await local.deliver(
                s.store, data, mail.address, list(tx.local.values()), junk=junk, hostname=s.policy.hostname
            )
        if tx.external:
            # Forwarding for an alias (no AUTH): the reverse path becomes ours (SRS), so that
            # the destination's SPF check passes and bounces come back through us.
            sender = mail.address
            if s.auth_user is None and s.policy.srs is not None:
                sender = s.policy.srs.forward(mail.address)
            await local.enqueue(
                s.store, received + message, sender, list(tx.external.values()),
                envid=mail.envid, ret=mail.ret, smtputf8=mail.smtputf8, body_8bit=mail.body == "8BITMIME",
                auth_user=s.auth_user, source=tx.id,
            )  # fmt: skip
    except MessageRejected as exc:
        # RFC 5429 §2.2: ereject refuses in the protocol, with the script's reason.
        _fail(s, tx, size, err(550, "5.7.1", _one_line(exc.reason) or "Message rejected"))
    except QuotaExceeded:
        if any(t.quota_bytes and len(message) > t.quota_bytes for t in tx.local.values()):
            _fail(s, tx, size, err(552, "5.2.2", "Mailbox full: message larger than the recipient's quota"))
        _fail(s, tx, size, err(452, "4.2.2", "Mailbox full, try again later"))
    except NotFound:
        _fail(s, tx, size, err(451, "4.3.0", "Recipient changed during the transaction, try again"))
    except StoreError as exc:
        log.error("%s id=%s: store refused the message: %s", s.policy.name, tx.id, exc)
        _fail(s, tx, size, err(451, "4.3.0", "Local error in processing, try again later"))
    except OSError as exc:
        log.error("%s id=%s: storing failed: %s", s.policy.name, tx.id, exc)
        _fail(s, tx, size, err(451, "4.3.0", "Local error in processing, try again later"))
    s.messages += 1
    result = []
    if tx.local:
        result.append(f"delivered={len(tx.local)}")
    if tx.external:
        result.append(f"queued={len(tx.external)}")
    s.log_transaction(tx, size, "250 " + " ".join(result))
    s.tx = None
    s.state = State.READY
    s.reply(250, "2.0.0", f"OK: queued as {tx.id}")


async def _junk(s: Session, target: local.LocalTarget) -> local.LocalTarget:
    """The same user's Junk mailbox (created when missing), for DMARC p=quarantine."""
    boxes = await s.store.list_mailboxes(target.user_id)
    box = next((b for b in boxes if b.special_use == "\\Junk"), None) or next(
        (b for b in boxes if b.name.lower() == "junk"), None
    )
    if box is None:
        try:
            box = await s.store.create_mailbox(target.user_id, "Junk", "\\Junk")
        except StoreError:
            return target
    return dataclasses.replace(target, inbox_id=box.id)


async def _check_from(s: Session, tx: Transaction, header: bytes, size: int) -> None:
    """An authenticated sender may only put its own addresses in From (and Sender)."""
    assert s.auth_user is not None
    fields, _ = scan_header(header, 0, len(header))
    addresses = [addr for name, raw in fields if name.lower() in ("from", "sender") for _, addr in parse_addresses(raw)]
    for address in addresses:
        if not await s.resolver.owns(s.auth_user, address):
            _fail(s, tx, size, err(553, "5.7.1", f"From address {address} not owned by {s.auth_user}"))


def _protocol_name(s: Session, tx: Transaction) -> str:
    """RFC 3848 and RFC 6531 §3.7.3 'with' keywords."""
    if not s.esmtp:
        return "SMTP"
    name = "UTF8SMTP" if tx.mail.smtputf8 else "ESMTP"
    if s.tls:
        name += "S"
    if s.auth_user is not None:
        name += "A"
    return name


def _one_line(text: str) -> str:
    """A script's reason as one printable reply line (no CR/LF injection into the reply)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:400]
