"""RFC 5464 METADATA entries (schema 4): per-user server entries and mailbox entries."""

from __future__ import annotations

import sqlite3

from courriel.store.api import NotFound, QuotaExceeded
from courriel.store.changes import MetadataChanged
from courriel.store.sqlite.db import Tx


def get(c: sqlite3.Connection, user_id: int, mailbox_id: int | None) -> dict[str, bytes]:
    rows = c.execute(
        "SELECT name, value FROM metadata WHERE user_id = ? AND mailbox_id = ? ORDER BY name",
        (user_id, mailbox_id or 0),
    ).fetchall()
    return {str(name): bytes(value) for name, value in rows}


def set_entries(
    tx: Tx, user_id: int, mailbox_id: int | None, entries: dict[str, bytes | None], max_entries: int
) -> None:
    if mailbox_id is not None and tx.one(
        "SELECT 1 FROM mailboxes WHERE id = ? AND user_id = ?", (mailbox_id, user_id)
    ) is None:
        raise NotFound("no such mailbox")
    box = mailbox_id or 0
    for name, value in entries.items():
        if value is None:
            tx.run("DELETE FROM metadata WHERE user_id = ? AND mailbox_id = ? AND name = ?", (user_id, box, name))
        else:
            tx.run(
                "INSERT OR REPLACE INTO metadata (user_id, mailbox_id, name, value) VALUES (?, ?, ?, ?)",
                (user_id, box, name, value),
            )
    if max_entries:
        count = tx.one("SELECT COUNT(*) FROM metadata WHERE user_id = ? AND mailbox_id = ?", (user_id, box))[0]
        if count > max_entries:
            raise QuotaExceeded("too many annotations")  # rolled back with the operation
    if entries:  # RFC 5465 §5.7-5.8: NOTIFY MailboxMetadataChange / ServerMetadataChange
        tx.changes.append(MetadataChanged(user_id, 0, mailbox_id, tuple(sorted(entries))))
