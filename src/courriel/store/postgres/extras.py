"""METADATA entries (RFC 5464), Sieve scripts (RFC 5228/5804) with vacation tracking
(RFC 5230), and the outbound queue, on PostgreSQL (semantics of the SQLite modules)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from courriel.store.api import (
    AlreadyExists,
    NotFound,
    QueuedMessage,
    QueuedRecipient,
    QueueRecipient,
    QuotaExceeded,
    RecipientUpdate,
    SieveScript,
    StoreError,
)
from courriel.store.changes import MetadataChanged
from courriel.store.postgres.db import Row, Tx

# --- metadata ----------------------------------------------------------------------------


async def get_metadata(tx: Tx, user_id: int, mailbox_id: int | None) -> dict[str, bytes]:
    rows = await tx.all(
        "SELECT name, value FROM metadata WHERE user_id = %s AND mailbox_id = %s ORDER BY name",
        (user_id, mailbox_id or 0),
    )
    return {str(name): bytes(value) for name, value in rows}


async def set_metadata(
    tx: Tx, user_id: int, mailbox_id: int | None, entries: dict[str, bytes | None], max_entries: int
) -> None:
    if mailbox_id is not None and await tx.one(
        "SELECT 1 FROM mailboxes WHERE id = %s AND user_id = %s", (mailbox_id, user_id)
    ) is None:
        raise NotFound("no such mailbox")
    box = mailbox_id or 0
    await tx.run("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (user_id,))  # count check below
    for name, value in entries.items():
        if value is None:
            await tx.run(
                "DELETE FROM metadata WHERE user_id = %s AND mailbox_id = %s AND name = %s", (user_id, box, name)
            )
        else:
            await tx.run(
                "INSERT INTO metadata (user_id, mailbox_id, name, value) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (user_id, mailbox_id, name) DO UPDATE SET value = EXCLUDED.value",
                (user_id, box, name, value),
            )
    if max_entries:
        row = await tx.one("SELECT COUNT(*) FROM metadata WHERE user_id = %s AND mailbox_id = %s", (user_id, box))
        if row is not None and row[0] > max_entries:
            raise QuotaExceeded("too many annotations")  # rolls the transaction back
    if entries:  # RFC 5465 §5.7-5.8: NOTIFY MailboxMetadataChange / ServerMetadataChange
        tx.changes.append(MetadataChanged(user_id, 0, mailbox_id, tuple(sorted(entries))))


# --- Sieve scripts -----------------------------------------------------------------------


async def _lock_user(tx: Tx, user_id: int) -> None:
    if await tx.one("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (user_id,)) is None:
        raise NotFound("no such user")


async def list_scripts(tx: Tx, user_id: int) -> list[SieveScript]:
    rows = await tx.all(
        "SELECT name, content, active FROM sieve_scripts WHERE user_id = %s ORDER BY name COLLATE \"C\"", (user_id,)
    )
    return [SieveScript(str(r[0]), str(r[1]), bool(r[2])) for r in rows]


async def get_script(tx: Tx, user_id: int, name: str | None) -> SieveScript | None:
    if name is None:
        row = await tx.one("SELECT name, content, active FROM sieve_scripts WHERE user_id = %s AND active", (user_id,))
    else:
        row = await tx.one(
            "SELECT name, content, active FROM sieve_scripts WHERE user_id = %s AND name = %s", (user_id, name)
        )
    return None if row is None else SieveScript(str(row[0]), str(row[1]), bool(row[2]))


async def delivery_scripts(tx: Tx, user_id: int, system: str) -> tuple[SieveScript | None, SieveScript | None]:
    """(the active script, the script named ``system``) in one query."""
    rows = await tx.all(
        "SELECT name, content, active FROM sieve_scripts WHERE user_id = %s AND (active OR name = %s)",
        (user_id, system),
    )
    scripts = [SieveScript(str(r[0]), str(r[1]), bool(r[2])) for r in rows]
    return next((s for s in scripts if s.active), None), next((s for s in scripts if s.name == system), None)


async def put_script(tx: Tx, user_id: int, name: str, content: str, max_scripts: int, max_size: int) -> None:
    await _lock_user(tx, user_id)
    if max_size and len(content.encode()) > max_size:
        raise QuotaExceeded("script too large")
    if await tx.run(
        "UPDATE sieve_scripts SET content = %s WHERE user_id = %s AND name = %s", (content, user_id, name)
    ):
        return
    if max_scripts:
        row = await tx.one("SELECT COUNT(*) FROM sieve_scripts WHERE user_id = %s", (user_id,))
        if row is not None and row[0] >= max_scripts:
            raise QuotaExceeded("too many scripts")
    await tx.run("INSERT INTO sieve_scripts (user_id, name, content) VALUES (%s, %s, %s)", (user_id, name, content))


async def set_active(tx: Tx, user_id: int, name: str | None) -> None:
    await _lock_user(tx, user_id)
    if name is not None and await tx.one(
        "SELECT 1 FROM sieve_scripts WHERE user_id = %s AND name = %s", (user_id, name)
    ) is None:
        raise NotFound("no such script")
    await tx.run("UPDATE sieve_scripts SET active = false WHERE user_id = %s AND active", (user_id,))
    if name is not None:
        await tx.run("UPDATE sieve_scripts SET active = true WHERE user_id = %s AND name = %s", (user_id, name))


async def delete_script(tx: Tx, user_id: int, name: str) -> None:
    row = await tx.one("SELECT active FROM sieve_scripts WHERE user_id = %s AND name = %s FOR UPDATE", (user_id, name))
    if row is None:
        raise NotFound("no such script")
    if row[0]:
        raise StoreError("the active script cannot be deleted")  # RFC 5804 §2.10
    await tx.run("DELETE FROM sieve_scripts WHERE user_id = %s AND name = %s", (user_id, name))


async def rename_script(tx: Tx, user_id: int, old: str, new: str) -> None:
    await _lock_user(tx, user_id)
    if await tx.one("SELECT 1 FROM sieve_scripts WHERE user_id = %s AND name = %s", (user_id, old)) is None:
        raise NotFound("no such script")
    if await tx.one("SELECT 1 FROM sieve_scripts WHERE user_id = %s AND name = %s", (user_id, new)) is not None:
        raise AlreadyExists("a script with that name exists")
    await tx.run("UPDATE sieve_scripts SET name = %s WHERE user_id = %s AND name = %s", (new, user_id, old))


async def vacation_due(tx: Tx, user_id: int, handle: str, sender: str, now: int, period: int) -> bool:
    """Record a reply to ``sender`` unless one was sent within ``period`` seconds (atomic:
    the upsert only succeeds when the last reply is old enough)."""
    row = await tx.one(
        "INSERT INTO sieve_vacation (user_id, handle, sender, sent_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (user_id, handle, sender) DO UPDATE SET sent_at = EXCLUDED.sent_at"
        " WHERE sieve_vacation.sent_at <= %s RETURNING 1",
        (user_id, handle, sender, now, now - period),
    )
    if row is None:
        return False
    await tx.run("DELETE FROM sieve_vacation WHERE user_id = %s AND sent_at < %s", (user_id, now - 400 * 86400))
    return True


# --- the outbound queue --------------------------------------------------------------------

QUEUE_COLS = "id, mail_from, size, blob, created, envid, ret, smtputf8, body_8bit, auth_user, source"
RECIPIENT_COLS = "id, queue_id, address, notify, orcpt, state, attempts, next_attempt, last_error"
#: With a node: a recipient claimed by another node shows its claim's end as next attempt.
_CLAIM_AWARE = RECIPIENT_COLS.replace(
    "next_attempt", "CASE WHEN claimed_by IS NOT NULL AND claimed_by != %s AND claimed_until > next_attempt"
    " THEN claimed_until ELSE next_attempt END"
)


async def enqueue(
    tx: Tx, blob: str, data: bytes | None, size: int, mail_from: str, recipients: Sequence[QueueRecipient],
    envid: str | None, ret: str | None, smtputf8: bool, body_8bit: bool, auth_user: str | None, source: str,
) -> int:  # fmt: skip
    now = int(time.time())
    if data is not None:
        await tx.run("INSERT INTO blob_data (blob, data) VALUES (%s, %s)", (blob, data))
    row = await tx.one(
        "INSERT INTO queue (blob, size, mail_from, envid, ret, smtputf8, body_8bit, auth_user, source, created)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (blob, size, mail_from, envid, ret, smtputf8, body_8bit, auth_user, source, now),
    )
    assert row is not None
    queue_id = int(row[0])
    await tx.run(
        "INSERT INTO queue_recipients (queue_id, address, notify, orcpt, next_attempt)"
        " SELECT %s, t.a, t.n, t.o, %s FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS t(a, n, o, i)"
        " ORDER BY t.i",
        (queue_id, now, [r.address for r in recipients], [r.notify for r in recipients],
         [r.orcpt for r in recipients]),
    )  # fmt: skip
    return queue_id


async def delete(tx: Tx, queue_id: int) -> None:
    await tx.run("DELETE FROM queue_recipients WHERE queue_id = %s", (queue_id,))
    row = await tx.one("DELETE FROM queue WHERE id = %s RETURNING blob", (queue_id,))
    if row is None:
        raise NotFound(f"no queued message {queue_id}")  # rolls the transaction back
    await tx.release_blob(str(row[0]))


async def update(tx: Tx, updates: Sequence[RecipientUpdate]) -> list[int]:
    """Apply attempt outcomes; remove the messages left with no waiting recipient."""
    touched: set[int] = set()
    for u in updates:
        nxt = int(u.next_attempt.timestamp()) if u.next_attempt is not None else None
        row = await tx.one(
            "UPDATE queue_recipients SET state = %s, next_attempt = COALESCE(%s, next_attempt), last_error = %s,"
            " attempts = attempts + %s, claimed_by = NULL WHERE id = %s RETURNING queue_id",
            (u.state, nxt, u.last_error, int(u.attempted), u.id),
        )
        if row is not None:  # else deleted meanwhile (queue delete)
            touched.add(int(row[0]))
    removed: list[int] = []
    for queue_id in sorted(touched):
        waiting = await tx.one(
            "SELECT 1 FROM queue_recipients WHERE queue_id = %s AND state IN ('queued', 'deferred') LIMIT 1",
            (queue_id,),
        )
        if waiting is None:
            await delete(tx, queue_id)
            removed.append(queue_id)
    return removed


async def flush(tx: Tx) -> int:
    return await tx.run(
        "UPDATE queue_recipients SET next_attempt = %s WHERE state IN ('queued', 'deferred')", (int(time.time()),)
    )


#: How long a node's claim on due recipients lasts without being renewed by its next poll
#: (the outbound worker polls every outbound.poll_ms): after a crash, the recipients it had
#: claimed wait this long before another node, or the restarted one, takes them.
CLAIM_SECONDS = 30
_CLAIMABLE = (
    "r.state IN ('queued', 'deferred') AND r.next_attempt <= %s"
    " AND (r.claimed_by IS NULL OR r.claimed_by = %s OR r.claimed_until < %s)"
)


async def due(tx: Tx, node: str, now: int, limit: int) -> list[QueuedMessage]:
    """Due messages, oldest first, claimed for this node.

    Several nodes share the queue: the messages are picked with FOR UPDATE SKIP LOCKED (a
    node polling at the same instant skips them), and their due recipients are claimed
    (``claimed_by``) for CLAIM_SECONDS, renewed by each poll of the same node and cleared
    by :func:`update`. Recipients claimed by another node are returned with their claim's
    end as next attempt, so the worker leaves them alone; a dead node's claims expire."""
    ids = [
        int(r[0])
        for r in await tx.all(
            f"SELECT q.id FROM queue q WHERE EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id"
            f" AND {_CLAIMABLE}) ORDER BY q.id LIMIT %s FOR UPDATE OF q SKIP LOCKED",
            (now, node, now, limit),
        )
    ]
    if not ids:
        return []
    await tx.run(
        f"UPDATE queue_recipients r SET claimed_by = %s, claimed_until = %s WHERE r.queue_id = ANY(%s::bigint[])"
        f" AND {_CLAIMABLE}",
        (node, now + CLAIM_SECONDS, ids, now, node, now),
    )
    return await load(tx, ids, node)


async def load(tx: Tx, ids: list[int] | None, node: str | None = None) -> list[QueuedMessage]:
    if ids is None:
        msgs = await tx.all(f"SELECT {QUEUE_COLS} FROM queue ORDER BY id")
        rcpts = await tx.all(f"SELECT {RECIPIENT_COLS} FROM queue_recipients ORDER BY id")
    elif not ids:
        return []
    else:
        msgs = await tx.all(f"SELECT {QUEUE_COLS} FROM queue WHERE id = ANY(%s::bigint[]) ORDER BY id", (ids,))
        rcpts = await tx.all(
            f"SELECT {_CLAIM_AWARE} FROM queue_recipients WHERE queue_id = ANY(%s::bigint[]) ORDER BY id",
            (node or "", ids),
        )
    return rows_to_messages(msgs, rcpts)


def _time(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def rows_to_messages(msgs: list[Row], rcpts: list[Row]) -> list[QueuedMessage]:
    by_queue: dict[int, list[QueuedRecipient]] = {}
    for rid, qid, address, notify, orcpt, state, attempts, next_attempt, last_error in rcpts:
        by_queue.setdefault(qid, []).append(
            QueuedRecipient(rid, address, notify, orcpt, state, attempts, _time(next_attempt), last_error)
        )
    return [
        QueuedMessage(
            qid, mail_from, size, blob, _time(created), envid, ret, bool(utf8), bool(b8), auth, source,
            tuple(by_queue.get(qid, ())),
        )
        for qid, mail_from, size, blob, created, envid, ret, utf8, b8, auth, source in msgs
    ]  # fmt: skip
