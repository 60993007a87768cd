"""Messages Sieve sends: vacation replies (RFC 5230, RFC 3834) and rejection notices
(RFC 5429 §2.1). Pure: the decision and the bytes; the caller queues them."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from email.utils import format_datetime

from courriel.mime import compose_message, parse_addresses, parse_msg_ids
from courriel.sieve.interpreter import Vacation
from courriel.sieve.message import MessageView

#: RFC 5230 §4.1: :days bounds (site policy).
MIN_DAYS, MAX_DAYS = 1, 365
_LIST_HEADERS = ("list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive")
#: RFC 5230 §4.6: local parts of senders that never get an automatic reply.
_SYSTEM_LOCALPARTS = ("mailer-daemon", "postmaster", "listserv", "majordomo", "noreply", "no-reply", "daemon")


def vacation_skip_reason(msg: MessageView, sender: str, user: str, vacation: Vacation) -> str | None:
    """Why no reply may go (None: it may). RFC 5230 §4.5-4.6 and RFC 3834 §2."""
    if not sender or "@" not in sender:
        return "null or invalid sender"
    local = sender.rpartition("@")[0].lower()
    if local in _SYSTEM_LOCALPARTS or local.startswith("owner-") or local.endswith("-request"):
        return "sender is a list or system address"
    own = {user.lower(), *(a.lower() for a in vacation.addresses)}
    if sender.lower() in own:
        return "sender is the user"
    for value in msg.headers("auto-submitted"):
        if value.strip().lower().split(";")[0].strip() != "no":
            return "message is auto-submitted"
    if any(msg.raw_headers(h) for h in _LIST_HEADERS):
        return "message is from a list"
    for value in msg.headers("precedence"):
        if value.strip().lower() in ("bulk", "list", "junk"):
            return "message is bulk"
    recipients = {
        a.lower()
        for h in ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
        for raw in msg.raw_headers(h)
        for a in msg.addresses(raw)
    }
    if not recipients & own:
        return "user not named in To or Cc"
    return None


def vacation_days(vacation: Vacation) -> int:
    return max(MIN_DAYS, min(MAX_DAYS, vacation.days))


def vacation_handle(vacation: Vacation) -> str:
    """RFC 5230 §4.2: without :handle, replies differing in reason, subject, from or mime
    are tracked apart."""
    if vacation.handle is not None:
        return "h:" + vacation.handle
    key = "\0".join([vacation.reason, vacation.subject or "", vacation.from_ or "", str(vacation.mime)])
    return "d:" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def vacation_reply(msg: MessageView, sender: str, user: str, vacation: Vacation, hostname: str) -> bytes:
    """The reply (RFC 5230 §5): to the envelope sender, Auto-Submitted: auto-replied."""
    subjects = msg.headers("subject")
    subject = vacation.subject if vacation.subject is not None else "Auto: " + (subjects[0] if subjects else "")
    ids = parse_msg_ids(msg.raw_headers("message-id")[0]) if msg.raw_headers("message-id") else []
    refs = parse_msg_ids(" ".join(msg.raw_headers("references")))
    from_ = user
    if vacation.from_:
        # RFC 5230 §4.4: :from must be one of the user's addresses; anything else is ignored.
        own = {user.lower(), *(a.lower() for a in vacation.addresses)}
        named = [addr for _, addr in parse_addresses(vacation.from_)]
        if named and named[0].lower() in own:
            from_ = vacation.from_
    if not vacation.mime:
        return compose_message(
            from_=from_, to=sender, subject=subject, text=vacation.reason,
            in_reply_to=ids[0] if ids else None, references=[*refs, *ids[:1]],
            headers=[("Auto-Submitted", "auto-replied")], domain=hostname,
        )  # fmt: skip
    # :mime: the reason is a MIME entity (its own Content-Type header and body).
    head = compose_message(
        from_=from_, to=sender, subject=subject, text="",
        in_reply_to=ids[0] if ids else None, references=[*refs, *ids[:1]],
        headers=[("Auto-Submitted", "auto-replied")], domain=hostname,
    )  # fmt: skip
    fields = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    keep = [f for f in fields if not f.lower().startswith((b"content-", b"mime-version"))]
    entity = vacation.reason.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    if b"\r\n\r\n" not in entity:
        entity = b"\r\n" + entity
    return b"\r\n".join(keep) + b"\r\nMIME-Version: 1.0\r\n" + entity


def rejection_notice(data: bytes, sender: str, recipient: str, reason: str, hostname: str) -> bytes:
    """A delivery status notification (RFC 3464) that ``recipient``'s script refused the
    message, with its header returned (RFC 5429 §2.1: a DSN when not refused in SMTP)."""
    boundary = f"=_sieve_{int(time.time() * 1000):x}"
    header_end = data.find(b"\r\n\r\n")
    original = data[: header_end + 2] if header_end >= 0 else data
    text = reason.replace("\r\n", "\n").replace("\n", "\r\n")
    parts = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{sender}>",
        "Subject: Message rejected",
        f"Date: {format_datetime(datetime.now().astimezone())}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"Your message to <{recipient}> was rejected by the recipient's filter:",
        "",
        text,
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {hostname}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        "Action: failed",
        "Status: 5.7.1",
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    return "\r\n".join(parts).encode("utf-8", "surrogateescape") + b"\r\n" + original + tail
