"""Sieve scripts and vacation tracking (schema 5)."""

from __future__ import annotations

import sqlite3

from courriel.store.api import AlreadyExists, NotFound, QuotaExceeded, SieveScript, StoreError
from courriel.store.sqlite.db import Tx


def _user(tx: Tx, user_id: int) -> None:
    if tx.one("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
        raise NotFound("no such user")


def list_scripts(c: sqlite3.Connection, user_id: int) -> list[SieveScript]:
    rows = c.execute(
        "SELECT name, content, active FROM sieve_scripts WHERE user_id = ? ORDER BY name", (user_id,)
    ).fetchall()
    return [SieveScript(str(r[0]), str(r[1]), bool(r[2])) for r in rows]


def get_script(c: sqlite3.Connection, user_id: int, name: str | None) -> SieveScript | None:
    if name is None:
        row = c.execute(
            "SELECT name, content, active FROM sieve_scripts WHERE user_id = ? AND active = 1", (user_id,)
        ).fetchone()
    else:
        row = c.execute(
            "SELECT name, content, active FROM sieve_scripts WHERE user_id = ? AND name = ?", (user_id, name)
        ).fetchone()
    return None if row is None else SieveScript(str(row[0]), str(row[1]), bool(row[2]))


def delivery_scripts(c: sqlite3.Connection, user_id: int, system: str) -> tuple[SieveScript | None, SieveScript | None]:
    """(the active script, the script named ``system``) in one query."""
    rows = c.execute(
        "SELECT name, content, active FROM sieve_scripts WHERE user_id = ? AND (active = 1 OR name = ?)",
        (user_id, system),
    ).fetchall()
    scripts = [SieveScript(str(r[0]), str(r[1]), bool(r[2])) for r in rows]
    return next((s for s in scripts if s.active), None), next((s for s in scripts if s.name == system), None)


def put_script(tx: Tx, user_id: int, name: str, content: str, max_scripts: int, max_size: int) -> None:
    _user(tx, user_id)
    if max_size and len(content.encode()) > max_size:
        raise QuotaExceeded("script too large")
    exists = tx.one("SELECT 1 FROM sieve_scripts WHERE user_id = ? AND name = ?", (user_id, name))
    if exists is not None:
        tx.run("UPDATE sieve_scripts SET content = ? WHERE user_id = ? AND name = ?", (content, user_id, name))
        return
    if max_scripts:
        count = tx.one("SELECT COUNT(*) FROM sieve_scripts WHERE user_id = ?", (user_id,))[0]
        if count >= max_scripts:
            raise QuotaExceeded("too many scripts")
    tx.run("INSERT INTO sieve_scripts (user_id, name, content) VALUES (?, ?, ?)", (user_id, name, content))


def set_active(tx: Tx, user_id: int, name: str | None) -> None:
    if name is not None and tx.one(
        "SELECT 1 FROM sieve_scripts WHERE user_id = ? AND name = ?", (user_id, name)
    ) is None:
        raise NotFound("no such script")
    tx.run("UPDATE sieve_scripts SET active = 0 WHERE user_id = ? AND active = 1", (user_id,))
    if name is not None:
        tx.run("UPDATE sieve_scripts SET active = 1 WHERE user_id = ? AND name = ?", (user_id, name))


def delete_script(tx: Tx, user_id: int, name: str) -> None:
    row = tx.one("SELECT active FROM sieve_scripts WHERE user_id = ? AND name = ?", (user_id, name))
    if row is None:
        raise NotFound("no such script")
    if row[0]:
        raise StoreError("the active script cannot be deleted")  # RFC 5804 §2.10
    tx.run("DELETE FROM sieve_scripts WHERE user_id = ? AND name = ?", (user_id, name))


def rename_script(tx: Tx, user_id: int, old: str, new: str) -> None:
    if tx.one("SELECT 1 FROM sieve_scripts WHERE user_id = ? AND name = ?", (user_id, old)) is None:
        raise NotFound("no such script")
    if tx.one("SELECT 1 FROM sieve_scripts WHERE user_id = ? AND name = ?", (user_id, new)) is not None:
        raise AlreadyExists("a script with that name exists")
    tx.run("UPDATE sieve_scripts SET name = ? WHERE user_id = ? AND name = ?", (new, user_id, old))


def vacation_due(tx: Tx, user_id: int, handle: str, sender: str, now: int, period: int) -> bool:
    """Record a reply to ``sender`` unless one was sent within ``period`` seconds."""
    row = tx.one(
        "SELECT sent_at FROM sieve_vacation WHERE user_id = ? AND handle = ? AND sender = ?",
        (user_id, handle, sender),
    )
    if row is not None and now - int(row[0]) < period:
        return False
    tx.run(
        "INSERT OR REPLACE INTO sieve_vacation (user_id, handle, sender, sent_at) VALUES (?, ?, ?, ?)",
        (user_id, handle, sender, now),
    )
    # Entries older than any :days allowed (RFC 5230 §4.1 caps are site policy) are dropped.
    tx.run("DELETE FROM sieve_vacation WHERE user_id = ? AND sent_at < ?", (user_id, now - 400 * 86400))
    return True


