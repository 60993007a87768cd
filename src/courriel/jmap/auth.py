"""Who is calling: HTTP Basic (RFC 7617, through :func:`courriel.web.auth.basic_user`, which
applies the TLS/loopback rule and the rate limits) or a bearer token (RFC 6750).

Tokens are 32 random bytes, url-safe base64 with a ``cjt_`` prefix; the store keeps only
their SHA-256 (they are high-entropy, so no slow hash is needed). A bad token counts as an
authentication failure in the same limiter as passwords.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from courriel.web.auth import basic_user, client_ip

if TYPE_CHECKING:
    from courriel.server import Context

PREFIX = "cjt_"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    address: str


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def bearer_token(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > 200:
        return None
    return value


class _Locked(Exception):
    pass


async def authenticate(ctx: Context, conn: HTTPConnection) -> Principal | None:
    header = conn.headers.get("authorization", "")
    token = bearer_token(header)
    if token is not None:
        ip = client_ip(conn)
        limiter = ctx.auth_limiter
        if limiter.refused(ip):
            return None
        try:
            user = await limiter.checked(ip, functools.partial(ctx.store.token_user, token_hash(token)), _Locked)
        except _Locked:
            return None
        if user is None:
            limiter.failure(ip)
            return None
        limiter.success(ip)
        return Principal(user.id, user.address)
    cred = await basic_user(ctx, conn)
    if cred is None:
        return None
    return Principal(cred.user_id, cred.address)
