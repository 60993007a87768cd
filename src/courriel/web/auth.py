"""Authentication shared by the http parts: HTTP Basic (RFC 7617) against the store.

Passwords travel only over TLS, or from a loopback client, or when ``[http]
allow_plaintext_auth`` is set. Failures count in the process-wide :class:`AuthLimiter`, like
IMAP, POP3 and SMTP logins.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import ipaddress
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from courriel import metrics
from courriel.auth.sasl import check_password
from courriel.store.api import Credentials

if TYPE_CHECKING:
    from courriel.server import Context


def client_ip(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def password_allowed(ctx: Context, conn: HTTPConnection) -> bool:
    """May this connection carry a password? (TLS, loopback, or explicitly allowed.)"""
    return conn.url.scheme in ("https", "wss") or is_loopback(client_ip(conn)) or ctx.cfg.http.allow_plaintext_auth


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class _Locked(Exception):
    pass


async def login(ctx: Context, conn: HTTPConnection, username: str, password: str) -> Credentials | None:
    """Check a password with the same rate limits as the other protocols; None on failure."""
    ip = client_ip(conn)
    limiter = ctx.auth_limiter
    if limiter.refused(ip):
        return None
    delay = limiter.delay(ip)
    if delay:
        await asyncio.sleep(delay)
    try:
        cred = await limiter.checked(ip, functools.partial(check_password, ctx.store, username, password), _Locked)
    except _Locked:
        return None
    if cred is None:
        limiter.failure(ip)
        metrics.login("http", False)
        return None
    limiter.success(ip)
    metrics.login("http", True)
    return cred


async def basic_user(ctx: Context, conn: HTTPConnection) -> Credentials | None:
    """The user named by an ``Authorization: Basic`` header, or None."""
    if not password_allowed(ctx, conn):
        return None
    creds = parse_basic(conn.headers.get("authorization", ""))
    if creds is None:
        return None
    return await login(ctx, conn, *creds)
