"""Webmail sessions on PostgreSQL (table web_sessions, migration 0003), shared by every node
of the store: see :mod:`courriel.store.sqlite.websessions`."""

from __future__ import annotations

from collections.abc import Sequence

from courriel.store.api import NotFound, WebSession
from courriel.store.postgres.db import Tx
from courriel.store.sqlite.websessions import COLS, session

_FROM = "web_sessions s JOIN users u ON u.id = s.user_id AND NOT u.disabled"


async def add(tx: Tx, user_id: int, token_hash: bytes, secret: str, created: float, expires: float,
              client_ip: str, user_agent: str) -> WebSession:  # fmt: skip
    if await tx.one("SELECT 1 FROM users WHERE id = %s", (user_id,)) is None:
        raise NotFound("no such user")
    row = await tx.one(
        "INSERT INTO web_sessions (token_hash, user_id, secret, created, last_seen, expires, client_ip, user_agent)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (token_hash, user_id, secret, created, created, expires, client_ip, user_agent),
    )
    assert row is not None
    return WebSession(int(row[0]), user_id, token_hash, secret, created, created, expires, client_ip, user_agent)


async def by_hash(tx: Tx, token_hash: bytes) -> WebSession | None:
    row = await tx.one(f"SELECT {COLS} FROM {_FROM} WHERE s.token_hash = %s", (token_hash,))
    return session(row) if row else None


async def by_id(tx: Tx, session_id: int) -> WebSession | None:
    row = await tx.one(f"SELECT {COLS} FROM {_FROM} WHERE s.id = %s", (session_id,))
    return session(row) if row else None


async def of_user(tx: Tx, user_id: int) -> list[WebSession]:
    rows = await tx.all(
        f"SELECT {COLS} FROM web_sessions s WHERE s.user_id = %s ORDER BY s.last_seen DESC, s.id DESC", (user_id,)
    )
    return [session(r) for r in rows]


async def touch(tx: Tx, seen: Sequence[tuple[int, float]]) -> None:
    if not seen:
        return
    await tx.run(
        "UPDATE web_sessions s SET last_seen = v.t FROM unnest(%s::bigint[], %s::float8[]) AS v(id, t)"
        " WHERE s.id = v.id AND s.last_seen < v.t",
        ([i for i, _ in seen], [t for _, t in seen]),
    )


async def delete(tx: Tx, session_id: int) -> None:
    await tx.run("DELETE FROM web_sessions WHERE id = %s", (session_id,))


async def delete_user(tx: Tx, user_id: int) -> int:
    return await tx.run("DELETE FROM web_sessions WHERE user_id = %s", (user_id,))


async def prune(tx: Tx, idle_before: float, now: float) -> int:
    return await tx.run("DELETE FROM web_sessions WHERE last_seen < %s OR expires < %s", (idle_before, now))
