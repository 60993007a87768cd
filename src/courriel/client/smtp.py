"""Submission (RFC 6409) over SMTP with AUTH: the envelope from the draft, the bytes as built."""

from __future__ import annotations

import smtplib

from .accounts import Account
from .errors import ClientError, talking_to
from .transport import open_smtp


def submit(account: Account, sender: str, recipients: list[str], message: bytes) -> None:
    """Send ``message`` to ``recipients``; every recipient must be accepted."""
    if not recipients:
        raise ClientError("no recipients (give --to, --cc or --bcc)")
    srv = account.server("smtp")
    conn = open_smtp(account)
    try:
        with talking_to("SMTP", srv.host, srv.port):
            options: list[str] = []
            if not message.isascii() and conn.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")  # RFC 6152
            refused = conn.sendmail(sender, recipients, message, mail_options=options)
            if refused:
                detail = "; ".join(f"{r}: {c} {m.decode('utf-8', 'replace')}" for r, (c, m) in refused.items())
                raise ClientError(f"SMTP {srv.host}:{srv.port} refused some recipients (the others got it): {detail}")
            try:
                conn.quit()
            except smtplib.SMTPServerDisconnected:
                pass
    finally:
        conn.close()
