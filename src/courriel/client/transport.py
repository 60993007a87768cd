"""Connections to the account's servers: TLS contexts, SMTP, IMAP and POP3 logins.

TLS modes (RFC 8314): "tls" is implicit TLS from the first byte (465, 993, 995);
"starttls" upgrades a plain connection (RFC 3207, RFC 3501 §6.2.1, RFC 2595 §4) and fails
when the server does not offer it, so a password never crosses an unprotected link by
accident; "none" is plaintext, for loopback test servers only when chosen explicitly.
"""

from __future__ import annotations

import poplib
import smtplib
import ssl
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from .accounts import Account
from .errors import AuthError, ClientError, talking_to

TIMEOUT = 60.0


def tls_context(account: Account) -> ssl.SSLContext:
    """Certificates verified, host names checked; ``ca_file`` (a CA or the server's own
    self-signed certificate) replaces the system trust store when given."""
    if account.ca_file:
        path = Path(account.ca_file).expanduser()
        try:
            ctx = ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise ClientError(f"cannot load CA file {path}: {exc}") from None
        # A self-signed server certificate is its own trust anchor: do not demand the
        # RFC 5280 extensions a CA would carry (Python 3.13 sets this flag by default).
        ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def open_smtp(account: Account) -> smtplib.SMTP:
    """A logged-in submission session (RFC 6409, AUTH per RFC 4954)."""
    srv = account.server("smtp")
    ctx = tls_context(account)
    with talking_to("SMTP", srv.host, srv.port):
        conn: smtplib.SMTP
        if srv.tls == "tls":
            conn = smtplib.SMTP_SSL(srv.host, srv.port, timeout=TIMEOUT, context=ctx)
        else:
            conn = smtplib.SMTP(srv.host, srv.port, timeout=TIMEOUT)
        try:
            conn.ehlo()
            if srv.tls == "starttls":
                if not conn.has_extn("starttls"):
                    raise ClientError(f"TLS failure with SMTP {srv.host}:{srv.port}: STARTTLS not offered")
                conn.starttls(context=ctx)
                conn.ehlo()
            if not conn.has_extn("auth"):
                raise ClientError(f"SMTP {srv.host}:{srv.port} offers no AUTH (is TLS required first?)")
            conn.login(account.login, account.password())
        except BaseException:
            conn.close()
            raise
    return conn


def open_imap(account: Account) -> IMAPClient:
    srv = account.server("imap")
    ctx = tls_context(account)
    with talking_to("IMAP", srv.host, srv.port):
        client = IMAPClient(srv.host, srv.port, ssl=srv.tls == "tls", ssl_context=ctx, timeout=TIMEOUT)
        try:
            if srv.tls == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise ClientError(f"TLS failure with IMAP {srv.host}:{srv.port}: STARTTLS not offered")
                client.starttls(ctx)
            try:
                client.login(account.login, account.password())
            except LoginError as exc:
                why = str(exc).removeprefix("b'").removesuffix("'")
                raise AuthError(f"wrong credentials for IMAP {srv.host}:{srv.port}: {why}") from None
        except BaseException:
            try:
                client.shutdown()
            except OSError:
                pass
            raise
    return client


def open_pop3(account: Account) -> poplib.POP3:
    srv = account.server("pop3")
    ctx = tls_context(account)
    with talking_to("POP3", srv.host, srv.port):
        conn: poplib.POP3
        if srv.tls == "tls":
            conn = poplib.POP3_SSL(srv.host, srv.port, timeout=TIMEOUT, context=ctx)
        else:
            conn = poplib.POP3(srv.host, srv.port, timeout=TIMEOUT)
        try:
            if srv.tls == "starttls":
                try:
                    conn.stls(context=ctx)
                except poplib.error_proto as exc:
                    raise ClientError(f"TLS failure with POP3 {srv.host}:{srv.port}: STLS refused ({exc})") from None
            conn.user(account.login)
            try:
                conn.pass_(account.password())
            except poplib.error_proto as exc:
                why = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
                raise AuthError(f"wrong credentials for POP3 {srv.host}:{srv.port}: {why}") from None
        except BaseException:
            try:
                conn.close()
            except OSError:
                pass
            raise
    return conn
