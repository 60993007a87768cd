"""Delivery status notifications (RFC 3464) for the envelope sender.

A report is ``multipart/report; report-type=delivery-status`` (RFC 6522) with three parts:
a human explanation, ``message/delivery-status`` (per-message fields, then one block per
recipient) and the original message (``message/rfc822``) or only its header
(``text/rfc822-headers``) as the sender's RET asked (RFC 3461 §4.3). Reports are sent with
the null reverse path so that they are never bounced (RFC 5321 §4.5.5).
"""

from __future__ import annotations

import email.utils
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

#: Keep reports of huge messages reasonable: above this, only the header is returned.
MAX_RETURNED = 10 * 1024 * 1024

_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    address: str
    orcpt: str | None
    action: str  # failed, delayed, delivered, relayed (RFC 3464 §2.3.3)
    status: str  # e.g. 5.1.1
    diagnostic: str | None = None  # the remote reply, "550 5.1.1 ..."
    remote_mta: str | None = None
    last_attempt: datetime | None = None
    retry_until: datetime | None = None


def status_of(code: int, text: str) -> str:
    """The enhanced status code of a reply (RFC 3463), or one made from its class."""
    m = _STATUS.match(text)
    if m is not None and m.group(1) == str(code // 100):
        return m.group(0)
    return {2: "2.0.0", 4: "4.0.0"}.get(code // 100, "5.0.0")


def _header_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data[: end + 2] if end >= 0 else data


def _clean(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "delivered": "Successful Mail Delivery Report",
    "relayed": "Successful Mail Delivery Report",
}

EXPLAIN = {
    "failed": "Your message could not be delivered to the following recipients; it will not be retried.",
    "delayed": "Your message has not been delivered yet to the following recipients; delivery is being retried.",
    "delivered": "Your message was delivered to the following recipients.",
    "relayed": "Your message was passed on to the following recipients' mail servers, "
    "which will not send a further notification.",
}


def build_report(
    *,
    sender: str,
    reporting_mta: str,
    original: bytes,
    recipients: Sequence[DsnRecipient],
    envid: str | None,
    ret: str | None,
    arrival: datetime,
    now: datetime,
) -> bytes:
    """The bytes of the report (CRLF line ends), addressed to ``sender``."""
    action = recipients[0].action
    boundary = f"=_courriel_dsn_{secrets.token_hex(12)}"
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{sender}>",
        f"Subject: {SUBJECTS[action]}",
        f"Date: {email.utils.format_datetime(now)}",
        f"Message-ID: <dsn.{secrets.token_hex(10)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a delivery status notification (RFC 3464).",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"This is the mail system at {reporting_mta}.",
        "",
        EXPLAIN[action],
        "",
    ]
    for r in recipients:
        why = f": {_clean(r.diagnostic)}" if r.diagnostic else ""
        lines.append(f"<{r.address}>{why}")
    lines += ["", f"--{boundary}", "Content-Type: message/delivery-status", ""]
    # RFC 3464 §2.2: per-message fields.
    lines.append(f"Reporting-MTA: dns; {reporting_mta}")
    if envid:
        lines.append(f"Original-Envelope-Id: {_clean(envid)}")
    lines.append(f"Arrival-Date: {email.utils.format_datetime(arrival)}")
    for r in recipients:
        # RFC 3464 §2.3: per-recipient fields, each block after a blank line.
        lines.append("")
        if r.orcpt:
            kind, _, addr = r.orcpt.partition(";")
            lines.append(f"Original-Recipient: {kind or 'rfc822'};{_clean(addr)}")
        lines.append(f"Final-Recipient: rfc822; {r.address}")
        lines.append(f"Action: {r.action}")
        lines.append(f"Status: {r.status}")
        if r.remote_mta:
            lines.append(f"Remote-MTA: dns; {r.remote_mta}")
        if r.diagnostic:
            lines.append(f"Diagnostic-Code: smtp; {_clean(r.diagnostic)}")
        if r.last_attempt:
            lines.append(f"Last-Attempt-Date: {email.utils.format_datetime(r.last_attempt)}")
        if r.retry_until:
            lines.append(f"Will-Retry-Until: {email.utils.format_datetime(r.retry_until)}")
    lines += ["", f"--{boundary}"]
    full = (ret or "").upper() != "HDRS" and len(original) <= MAX_RETURNED
    if full:
        lines += ["Content-Type: message/rfc822", "", ""]
        body = original if original.endswith(b"\r\n") else original + b"\r\n"
    else:
        lines += ["Content-Type: text/rfc822-headers", "", ""]
        body = _header_block(original)
    head = "\r\n".join(lines).encode("utf-8")
    return head + body + f"\r\n--{boundary}--\r\n".encode()
