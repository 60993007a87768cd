"""Webmail sessions on SQLite (table web_sessions, migration 0009): looked up by the SHA-256
of the cookie's token; last-seen times arrive in batches (one executemany)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from courriel.store.api import NotFound, WebSession
from courriel.store.sqlite.db import Tx

COLS = "s.id, s.user_id, s.token_hash, s.secret, s.created, s.last_seen, s.expires, s.client_ip, s.user_agent"
#: Only sessions of users that exist and are enabled are found.
_FROM = "web_sessions s JOIN users u ON u.id = s.user_id AND u.disabled = 0"


def session(r: Any) -> WebSession:
    return WebSession(int(r[0]), int(r[1]), bytes(r[2]), str(r[3]), float(r[4]), float(r[5]), float(r[6]),
                      str(r[7]), str(r[8]))  # fmt: skip


def add(tx: Tx, user_id: int, token_hash: bytes, secret: str, created: float, expires: float,
        client_ip: str, user_agent: str) -> WebSession:  # fmt: skip
    if tx.one("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
        raise NotFound("no such user")
    cur = tx.run(
        "INSERT INTO web_sessions (token_hash, user_id, secret, created, last_seen, expires, client_ip, user_agent)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (token_hash, user_id, secret, created, created, expires, client_ip, user_agent),
    )
    assert cur.lastrowid is not None
    return WebSession(cur.lastrowid, user_id, token_hash, secret, created, created, expires, client_ip, user_agent)


def by_hash(c: sqlite3.Connection, token_hash: bytes) -> WebSession | None:
    row = c.execute(f"SELECT {COLS} FROM {_FROM} WHERE s.token_hash = ?", (token_hash,)).fetchone()
    return session(row) if row else None


def by_id(c: sqlite3.Connection, session_id: int) -> WebSession | None:
    row = c.execute(f"SELECT {COLS} FROM {_FROM} WHERE s.id = ?", (session_id,)).fetchone()
    return session(row) if row else None


def of_user(c: sqlite3.Connection, user_id: int) -> list[WebSession]:
    rows = c.execute(
        f"SELECT {COLS} FROM web_sessions s WHERE s.user_id = ? ORDER BY s.last_seen DESC, s.id DESC", (user_id,)
    ).fetchall()
    return [session(r) for r in rows]


def touch(tx: Tx, seen: Sequence[tuple[int, float]]) -> None:
    tx.conn.executemany(
        "UPDATE web_sessions SET last_seen = ? WHERE id = ? AND last_seen < ?", [(t, i, t) for i, t in seen]
    )


def delete(tx: Tx, session_id: int) -> None:
    tx.run("DELETE FROM web_sessions WHERE id = ?", (session_id,))


def delete_user(tx: Tx, user_id: int) -> int:
    return int(tx.run("DELETE FROM web_sessions WHERE user_id = ?", (user_id,)).rowcount)


def prune(tx: Tx, idle_before: float, now: float) -> int:
    return int(tx.run("DELETE FROM web_sessions WHERE last_seen < ? OR expires < ?", (idle_before, now)).rowcount)
