"""Domains, users, aliases and mailboxes on PostgreSQL (semantics of the SQLite backend's
:mod:`courriel.store.sqlite.accounts`, which is the reference)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from courriel.auth.passwords import PasswordSecrets
from courriel.store.api import (
    INBOX,
    SPECIAL_USE,
    AlreadyExists,
    Domain,
    InvalidName,
    Mailbox,
    NotFound,
    StoreError,
    User,
)
from courriel.store.changes import MailboxCreated, MailboxDeleted, MailboxRenamed
from courriel.store.names import is_inferior, new_mailbox_name, normalize_mailbox, parents
from courriel.store.postgres import messages as msg_ops
from courriel.store.postgres.db import Row, Tx
from courriel.store.sqlite.rows import MAILBOX_COLS, USER_COLS, mailbox, user


async def add_domain(tx: Tx, name: str) -> Domain:
    row = await tx.one(
        "INSERT INTO domains (name, created) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (name, int(time.time())),
    )
    if row is None:
        raise AlreadyExists(f"domain {name} exists")
    return Domain(int(row[0]), name)


async def delete_domain(tx: Tx, name: str) -> None:
    row = await tx.one("SELECT id FROM domains WHERE lower(name) = lower(%s) FOR UPDATE", (name,))
    if row is None:
        raise NotFound(f"no domain {name}")
    if await tx.one("SELECT 1 FROM users WHERE domain_id = %s LIMIT 1", (row[0],)):
        raise StoreError(f"domain {name} still has users")
    await tx.run("DELETE FROM aliases WHERE lower(address) LIKE %s", ("%@" + name.lower(),))
    await tx.run("DELETE FROM domains WHERE id = %s", (row[0],))


async def next_uidvalidity(tx: Tx) -> int:
    """A server-wide sequence, so a recreated name never reuses a UIDVALIDITY (RFC 9051 §2.3.1.1)."""
    row = await tx.one("SELECT nextval('uidvalidity_seq')")
    assert row is not None
    return int(row[0])


async def add_user(tx: Tx, address: str, secrets: PasswordSecrets, quota_bytes: int, quota_messages: int) -> User:
    domain = address.rpartition("@")[2]
    drow = await tx.one("SELECT id FROM domains WHERE lower(name) = lower(%s)", (domain,))
    if drow is None:
        raise NotFound(f"{domain} is not a local domain (add it with 'courriel domain add')")
    row = await tx.one(
        "INSERT INTO users (address, domain_id, quota_bytes, quota_messages, created)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (address, drow[0], quota_bytes, quota_messages, int(time.time())),
    )
    if row is None:
        raise AlreadyExists(f"user {address} exists")
    user_id = int(row[0])
    await set_secrets(tx, user_id, secrets)
    for name, special in [(INBOX, None), *SPECIAL_USE.items()]:
        await create_mailbox(tx, user_id, name, special)
        await tx.run(
            "INSERT INTO subscriptions (user_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (user_id, name)
        )
    urow = await tx.one(f"SELECT {USER_COLS} FROM users WHERE id = %s", (user_id,))
    return user(urow)


async def user_id_of(tx: Tx, address: str) -> int:
    row = await tx.one("SELECT id FROM users WHERE lower(address) = lower(%s)", (address,))
    if row is None:
        raise NotFound(f"no user {address}")
    return int(row[0])


async def set_secrets(tx: Tx, user_id: int, s: PasswordSecrets) -> None:
    await tx.run(
        "UPDATE users SET password_hash = %s, scram_salt = %s, scram_iterations = %s,"
        " scram_stored_key = %s, scram_server_key = %s WHERE id = %s",
        (s.password_hash, s.scram_salt, s.scram_iterations, s.scram_stored_key, s.scram_server_key, user_id),
    )


async def delete_user(tx: Tx, address: str) -> None:
    user_id = await user_id_of(tx, address)
    await msg_ops.lock_users(tx, [user_id])
    for (content_id,) in await tx.all(
        "SELECT m.content_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.user_id = %s",
        (user_id,),
    ):
        await msg_ops.release_content(tx, content_id)
    boxes = [r[0] for r in await tx.all("SELECT id FROM mailboxes WHERE user_id = %s", (user_id,))]
    await tx.run("DELETE FROM messages WHERE mailbox_id = ANY(%s)", (boxes,))
    await tx.run("DELETE FROM expunged WHERE mailbox_id = ANY(%s)", (boxes,))
    for table in ("mailboxes", "subscriptions", "metadata", "sieve_scripts", "sieve_vacation",
                  "mailbox_tombstones", "access_tokens", "message_events", "email_submissions"):  # fmt: skip
        await tx.run(f"DELETE FROM {table} WHERE user_id = %s", (user_id,))
    await tx.run("DELETE FROM web_sessions WHERE user_id = %s", (user_id,))
    await tx.run("DELETE FROM users WHERE id = %s", (user_id,))


async def add_alias(tx: Tx, address: str, targets: Sequence[str]) -> None:
    domain = address.rpartition("@")[2]
    if await tx.one("SELECT 1 FROM domains WHERE lower(name) = lower(%s)", (domain,)) is None:
        raise NotFound(f"{domain} is not a local domain")
    for target in targets:
        await tx.run(
            "INSERT INTO aliases (address, target) VALUES (%s, %s) ON CONFLICT DO NOTHING", (address, target)
        )


async def delete_alias(tx: Tx, address: str, targets: Sequence[str]) -> None:
    if targets:
        n = 0
        for t in targets:
            n += await tx.run(
                "DELETE FROM aliases WHERE lower(address) = lower(%s) AND lower(target) = lower(%s)", (address, t)
            )
    else:
        n = await tx.run("DELETE FROM aliases WHERE lower(address) = lower(%s)", (address,))
    if not n:
        raise NotFound(f"no alias {address}" + (f" -> {', '.join(targets)}" if targets else ""))


# --- mailboxes -------------------------------------------------------------------------------


async def _get(tx: Tx, user_id: int, name: str) -> Row | None:
    return await tx.one(f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE user_id = %s AND name = %s", (user_id, name))


async def _insert_mailbox(tx: Tx, user_id: int, name: str, special_use: str | None) -> int:
    modseq = await msg_ops.next_modseq(tx, user_id)
    row = await tx.one(
        "INSERT INTO mailboxes (user_id, name, uidvalidity, highestmodseq, special_use, noselect, created_modseq)"
        " VALUES (%s, %s, %s, %s, %s, false, %s) RETURNING id",
        (user_id, name, await next_uidvalidity(tx), modseq, special_use, modseq),
    )
    assert row is not None
    mailbox_id = int(row[0])
    tx.changes.append(MailboxCreated(user_id, modseq, mailbox_id, name))
    return mailbox_id


async def create_mailbox(tx: Tx, user_id: int, name: str, special_use: str | None) -> Mailbox:
    name = new_mailbox_name(name)
    await msg_ops.lock_users(tx, [user_id])  # serialises this user's hierarchy changes
    existing = await _get(tx, user_id, name)
    if existing is not None:
        if not existing[7]:
            raise AlreadyExists(f"mailbox {name} exists")
        # A \Noselect placeholder becomes a real mailbox again, with a new UIDVALIDITY.
        modseq = await msg_ops.next_modseq(tx, user_id)
        await tx.run(
            "UPDATE mailboxes SET noselect = false, uidvalidity = %s, uidnext = 1, highestmodseq = %s,"
            " recent_uid = 1 WHERE id = %s",
            (await next_uidvalidity(tx), modseq, existing[0]),
        )
        await tx.run("DELETE FROM expunged WHERE mailbox_id = %s", (existing[0],))
        # Its tombstones are gone: account-wide change tracking must know.
        await _mailbox_tombstone(tx, user_id, existing[0], modseq)
        tx.changes.append(MailboxCreated(user_id, modseq, existing[0], name))
        return mailbox(await _get(tx, user_id, name))
    for parent in parents(name):
        if await _get(tx, user_id, parent) is None:
            await _insert_mailbox(tx, user_id, parent, None)
    await _insert_mailbox(tx, user_id, name, special_use)
    return mailbox(await _get(tx, user_id, name))


async def _has_children(tx: Tx, user_id: int, name: str) -> bool:
    row = await tx.one(
        "SELECT 1 FROM mailboxes WHERE user_id = %s AND starts_with(name, %s) LIMIT 1", (user_id, name + "/")
    )
    return row is not None


async def _clear_messages(tx: Tx, mbox: Row) -> None:
    rows = await tx.all(
        f"SELECT {msg_ops.SEL_COLS} FROM messages WHERE mailbox_id = %s ORDER BY uid", (mbox[0],)
    )
    if rows:
        await msg_ops.remove(tx, mbox, rows, await msg_ops.next_modseq(tx, mbox[1]))


async def delete_mailbox(tx: Tx, user_id: int, name: str) -> None:
    name = normalize_mailbox(name)
    if name == INBOX:
        raise StoreError("INBOX cannot be deleted")
    await msg_ops.lock_users(tx, [user_id])
    row = await _get(tx, user_id, name)
    if row is None:
        raise NotFound(f"no mailbox {name}")
    await tx.run("SELECT 1 FROM mailboxes WHERE id = %s FOR UPDATE", (row[0],))
    if await _has_children(tx, user_id, name):
        if row[7]:
            raise StoreError(f"{name} has inferior hierarchical names and is already \\Noselect")
        await _clear_messages(tx, row)
        modseq = await msg_ops.next_modseq(tx, user_id)
        await tx.run("UPDATE mailboxes SET noselect = true, highestmodseq = %s WHERE id = %s", (modseq, row[0]))
        return
    await _clear_messages(tx, row)
    await tx.run("DELETE FROM expunged WHERE mailbox_id = %s", (row[0],))
    await tx.run("DELETE FROM metadata WHERE user_id = %s AND mailbox_id = %s", (user_id, row[0]))
    await tx.run("DELETE FROM mailboxes WHERE id = %s", (row[0],))
    modseq = await msg_ops.next_modseq(tx, user_id)
    await _mailbox_tombstone(tx, user_id, row[0], modseq)
    tx.changes.append(MailboxDeleted(user_id, modseq, row[0], name))


async def _mailbox_tombstone(tx: Tx, user_id: int, mailbox_id: int, modseq: int) -> None:
    await tx.run(
        "INSERT INTO mailbox_tombstones (user_id, mailbox_id, modseq) VALUES (%s, %s, %s)"
        " ON CONFLICT (user_id, mailbox_id) DO UPDATE SET modseq = EXCLUDED.modseq",
        (user_id, mailbox_id, modseq),
    )


async def rename_mailbox(tx: Tx, user_id: int, old: str, new: str) -> None:
    old, new = normalize_mailbox(old), new_mailbox_name(new)
    await msg_ops.lock_users(tx, [user_id])
    src = await _get(tx, user_id, old)
    if src is None:
        raise NotFound(f"no mailbox {old}")
    if old == new or await _get(tx, user_id, new) is not None:
        raise AlreadyExists(f"mailbox {new} exists")
    if is_inferior(new, old):
        raise InvalidName("cannot rename a mailbox into itself")
    if old == INBOX:
        # RFC 9051 §6.3.6: all INBOX messages move to the new name; INBOX stays, empty,
        # and its inferiors are not renamed.
        created = await create_mailbox(tx, user_id, new, None)
        uids = [r[0] for r in await tx.all("SELECT uid FROM messages WHERE mailbox_id = %s", (src[0],))]
        if uids:
            await msg_ops.copy(tx, src[0], uids, created.id, expunge_source=True)
        return
    for parent in parents(new):
        if await _get(tx, user_id, parent) is None:
            await _insert_mailbox(tx, user_id, parent, None)
    family = await tx.all(
        "SELECT id, name FROM mailboxes WHERE user_id = %s AND (name = %s OR starts_with(name, %s)) ORDER BY id",
        (user_id, old, old + "/"),
    )
    for mailbox_id, name in family:
        renamed = new + name[len(old) :]
        modseq = await msg_ops.next_modseq(tx, user_id)
        await tx.run(
            "UPDATE mailboxes SET name = %s, highestmodseq = %s WHERE id = %s", (renamed, modseq, mailbox_id)
        )
        # UPDATE OR REPLACE: drop a subscription already under the new name first.
        await tx.run(
            "DELETE FROM subscriptions WHERE user_id = %s AND name = %s AND EXISTS"
            " (SELECT 1 FROM subscriptions WHERE user_id = %s AND name = %s)",
            (user_id, renamed, user_id, name),
        )
        await tx.run("UPDATE subscriptions SET name = %s WHERE user_id = %s AND name = %s", (renamed, user_id, name))
        tx.changes.append(MailboxRenamed(user_id, modseq, mailbox_id, name, renamed))
