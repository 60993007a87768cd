"""Failures of ``courriel mail``: one typed error, and the one place where exceptions of
the network libraries (ssl, socket, smtplib, imaplib/imapclient, poplib) become a line."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager


class ClientError(Exception):
    """A failure to report as one line (no traceback), exit status 1."""


class AuthError(ClientError):
    """The server refused the credentials."""


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())


def describe(exc: BaseException, service: str, host: str, port: int) -> ClientError:
    """A one-line ClientError for an exception raised while talking to ``host:port``."""
    where = f"{service} {host}:{port}"
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or _text(exc)
        return ClientError(f"TLS failure with {where}: certificate not trusted ({why}); "
                           "give the server's CA or certificate with --ca-file")  # fmt: skip
    if isinstance(exc, ssl.SSLError):
        return ClientError(f"TLS failure with {where}: {getattr(exc, 'reason', None) or _text(exc)}")
    if isinstance(exc, socket.gaierror):
        return ClientError(f"cannot reach {where}: unknown host ({exc.strerror})")
    if isinstance(exc, ConnectionRefusedError):
        return ClientError(f"cannot reach {where}: connection refused")
    if isinstance(exc, TimeoutError | socket.timeout):
        return ClientError(f"cannot reach {where}: timed out")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return AuthError(f"wrong credentials for {where}: {exc.smtp_code} {_text(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
        return ClientError(f"{where} refused the recipients: {refused}")
    if isinstance(exc, smtplib.SMTPResponseException):
        return ClientError(f"{where} said: {exc.smtp_code} {_text(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return ClientError(f"{where} closed the connection")
    if isinstance(exc, smtplib.SMTPException):
        return ClientError(f"{where}: {_text(exc)}")
    if isinstance(exc, poplib.error_proto):
        return ClientError(f"{where} said: {_text(exc.args[0] if exc.args else exc)}")
    if isinstance(exc, imaplib.IMAP4.abort):
        return ClientError(f"{where} closed the connection: {_text(exc)}")
    if isinstance(exc, imaplib.IMAP4.error):
        return ClientError(f"{where} said: {_text(exc)}")
    if isinstance(exc, ConnectionError | EOFError):
        return ClientError(f"{where} closed the connection")
    if isinstance(exc, OSError):
        return ClientError(f"cannot reach {where}: {exc.strerror or _text(exc)}")
    return ClientError(f"{where}: {type(exc).__name__}: {_text(exc)}")


@contextmanager
def talking_to(service: str, host: str, port: int) -> Iterator[None]:
    """Turn any network or protocol exception raised inside into a ClientError."""
    try:
        yield
    except ClientError:
        raise
    except (OSError, EOFError, smtplib.SMTPException, poplib.error_proto, imaplib.IMAP4.error) as exc:
        raise describe(exc, service, host, port) from exc
