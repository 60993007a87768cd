"""Domains, users, aliases and mailboxes: mutations run inside the writer's transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

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
from courriel.store.sqlite import messages as msg_ops
from courriel.store.sqlite.db import Tx
from courriel.store.sqlite.rows import MAILBOX_COLS, USER_COLS, mailbox, user


def add_domain(tx: Tx, name: str) -> Domain:
    try:
        cur = tx.run("INSERT INTO domains (name, created) VALUES (?, ?)", (name, int(time.time())))
    except sqlite3.IntegrityError:
        raise AlreadyExists(f"domain {name} exists") from None
    return Domain(int(cur.lastrowid or 0), name)


def delete_domain(tx: Tx, name: str) -> None:
    row = tx.one("SELECT id FROM domains WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no domain {name}")
    if tx.one("SELECT 1 FROM users WHERE domain_id = ?", (row[0],)):
        raise StoreError(f"domain {name} still has users")
    tx.run("DELETE FROM aliases WHERE address LIKE ?", (f"%@{name}",))
    tx.run("DELETE FROM domains WHERE id = ?", (row[0],))


def next_uidvalidity(tx: Tx) -> int:
    """A server-wide counter, so a recreated name never reuses a UIDVALIDITY (RFC 9051 §2.3.1.1)."""
    row = tx.one("SELECT value FROM meta WHERE key = 'uidvalidity'")
    value = int(row[0]) + 1 if row else int(time.time()) & 0x7FFFFFFF or 1
    tx.run("INSERT OR REPLACE INTO meta (key, value) VALUES ('uidvalidity', ?)", (str(value),))
    return value


def add_user(tx: Tx, address: str, secrets: PasswordSecrets, quota_bytes: int, quota_messages: int) -> User:
    domain = address.rpartition("@")[2]
    drow = tx.one("SELECT id FROM domains WHERE name = ?", (domain,))
    if drow is None:
        raise NotFound(f"{domain} is not a local domain (add it with 'courriel domain add')")
    try:
        cur = tx.run(
            "INSERT INTO users (address, domain_id, quota_bytes, quota_messages, created)"
            " VALUES (?, ?, ?, ?, ?)",
            (address, drow[0], quota_bytes, quota_messages, int(time.time())),
        )
    except sqlite3.IntegrityError:
        raise AlreadyExists(f"user {address} exists") from None
    user_id = int(cur.lastrowid or 0)
    set_secrets(tx, user_id, secrets)
    for name, special in [(INBOX, None), *SPECIAL_USE.items()]:
        create_mailbox(tx, user_id, name, special)
        tx.run("INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?, ?)", (user_id, name))
    return user(tx.one(f"SELECT {USER_COLS} FROM users WHERE id = ?", (user_id,)))


def user_id_of(tx: Tx, address: str) -> int:
    row = tx.one("SELECT id FROM users WHERE address = ?", (address,))
    if row is None:
        raise NotFound(f"no user {address}")
    return int(row[0])


def set_secrets(tx: Tx, user_id: int, s: PasswordSecrets) -> None:
    tx.run(
        "UPDATE users SET password_hash = ?, scram_salt = ?, scram_iterations = ?,"
        " scram_stored_key = ?, scram_server_key = ? WHERE id = ?",
        (s.password_hash, s.scram_salt, s.scram_iterations, s.scram_stored_key, s.scram_server_key, user_id),
    )


def delete_user(tx: Tx, address: str) -> None:
    user_id = user_id_of(tx, address)
    for (content_id,) in tx.all(
        "SELECT m.content_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.user_id = ?",
        (user_id,),
    ):
        msg_ops.release_content(tx, content_id)
    for (mailbox_id,) in tx.all("SELECT id FROM mailboxes WHERE user_id = ?", (user_id,)):
        tx.run("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))
        tx.run("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox_id,))
    tx.run("DELETE FROM mailboxes WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM subscriptions WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM metadata WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM sieve_scripts WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM sieve_vacation WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM mailbox_tombstones WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM access_tokens WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM message_events WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM email_submissions WHERE user_id = ?", (user_id,))
    tx.run("DELETE FROM users WHERE id = ?", (user_id,))


def add_alias(tx: Tx, address: str, targets: Sequence[str]) -> None:
    domain = address.rpartition("@")[2]
    if tx.one("SELECT 1 FROM domains WHERE name = ?", (domain,)) is None:
        raise NotFound(f"{domain} is not a local domain")
    for target in targets:
        tx.run("INSERT OR IGNORE INTO aliases (address, target) VALUES (?, ?)", (address, target))


def delete_alias(tx: Tx, address: str, targets: Sequence[str]) -> None:
    if targets:
        n = sum(
            tx.run("DELETE FROM aliases WHERE address = ? AND target = ?", (address, t)).rowcount
            for t in targets
        )
    else:
        n = tx.run("DELETE FROM aliases WHERE address = ?", (address,)).rowcount
    if not n:
        raise NotFound(f"no alias {address}" + (f" -> {', '.join(targets)}" if targets else ""))


# --- mailboxes -------------------------------------------------------------------------------


def _get(tx: Tx, user_id: int, name: str) -> Any:
    return tx.one(f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE user_id = ? AND name = ?", (user_id, name))


def _insert_mailbox(tx: Tx, user_id: int, name: str, special_use: str | None, noselect: bool) -> int:
    modseq = msg_ops.next_modseq(tx, user_id)
    cur = tx.run(
        "INSERT INTO mailboxes (user_id, name, uidvalidity, highestmodseq, special_use, noselect, created_modseq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (user_id, name, next_uidvalidity(tx), modseq, special_use, int(noselect), modseq),
    )
    mailbox_id = int(cur.lastrowid or 0)
    tx.changes.append(MailboxCreated(user_id, modseq, mailbox_id, name))
    return mailbox_id


def create_mailbox(tx: Tx, user_id: int, name: str, special_use: str | None) -> Mailbox:
    name = new_mailbox_name(name)
    existing = _get(tx, user_id, name)
    if existing is not None:
        if not existing[7]:
            raise AlreadyExists(f"mailbox {name} exists")
        # A \Noselect placeholder (left by deleting a parent) becomes a real mailbox again,
        # with a new UIDVALIDITY since its old UIDs are gone.
        modseq = msg_ops.next_modseq(tx, user_id)
        tx.run(
            "UPDATE mailboxes SET noselect = 0, uidvalidity = ?, uidnext = 1, highestmodseq = ?"
            " WHERE id = ?",
            (next_uidvalidity(tx), modseq, existing[0]),
        )
        tx.run("DELETE FROM expunged WHERE mailbox_id = ?", (existing[0],))
        # Its tombstones are gone: account-wide change tracking must know (schema 6).
        _mailbox_tombstone(tx, user_id, existing[0], modseq)
        tx.changes.append(MailboxCreated(user_id, modseq, existing[0], name))
        return mailbox(_get(tx, user_id, name))
    for parent in parents(name):
        if _get(tx, user_id, parent) is None:
            _insert_mailbox(tx, user_id, parent, None, noselect=False)
    _insert_mailbox(tx, user_id, name, special_use, noselect=False)
    return mailbox(_get(tx, user_id, name))


def _has_children(tx: Tx, user_id: int, name: str) -> bool:
    return (
        tx.one(
            "SELECT 1 FROM mailboxes WHERE user_id = ? AND substr(name, 1, ?) = ? LIMIT 1",
            (user_id, len(name) + 1, name + "/"),
        )
        is not None
    )


def _clear_messages(tx: Tx, mbox: Any) -> None:
    rows = tx.all(
        "SELECT uid, modseq, flags, keywords, size, internal_date, content_id FROM messages"
        " WHERE mailbox_id = ? ORDER BY uid",
        (mbox[0],),
    )
    if rows:
        msg_ops._remove(tx, mbox, rows, msg_ops.next_modseq(tx, mbox[1]))


def delete_mailbox(tx: Tx, user_id: int, name: str) -> None:
    name = normalize_mailbox(name)
    if name == INBOX:
        raise StoreError("INBOX cannot be deleted")
    row = _get(tx, user_id, name)
    if row is None:
        raise NotFound(f"no mailbox {name}")
    if _has_children(tx, user_id, name):
        if row[7]:
            raise StoreError(f"{name} has inferior hierarchical names and is already \\Noselect")
        _clear_messages(tx, row)
        modseq = msg_ops.next_modseq(tx, user_id)
        tx.run("UPDATE mailboxes SET noselect = 1, highestmodseq = ? WHERE id = ?", (modseq, row[0]))
        return
    _clear_messages(tx, row)
    tx.run("DELETE FROM expunged WHERE mailbox_id = ?", (row[0],))
    tx.run("DELETE FROM metadata WHERE user_id = ? AND mailbox_id = ?", (user_id, row[0]))
    tx.run("DELETE FROM mailboxes WHERE id = ?", (row[0],))
    modseq = msg_ops.next_modseq(tx, user_id)
    _mailbox_tombstone(tx, user_id, row[0], modseq)
    tx.changes.append(MailboxDeleted(user_id, modseq, row[0], name))


def _mailbox_tombstone(tx: Tx, user_id: int, mailbox_id: int, modseq: int) -> None:
    tx.run(
        "INSERT OR REPLACE INTO mailbox_tombstones (user_id, mailbox_id, modseq) VALUES (?, ?, ?)",
        (user_id, mailbox_id, modseq),
    )


def rename_mailbox(tx: Tx, user_id: int, old: str, new: str) -> None:
    old, new = normalize_mailbox(old), new_mailbox_name(new)
    src = _get(tx, user_id, old)
    if src is None:
        raise NotFound(f"no mailbox {old}")
    if old == new or _get(tx, user_id, new) is not None:
        raise AlreadyExists(f"mailbox {new} exists")
    if is_inferior(new, old):
        raise InvalidName("cannot rename a mailbox into itself")
    if old == INBOX:
        # RFC 9051 §6.3.6: all INBOX messages move to the new name; INBOX stays, empty,
        # and its inferiors are not renamed.
        created = create_mailbox(tx, user_id, new, None)
        uids = [r[0] for r in tx.all("SELECT uid FROM messages WHERE mailbox_id = ?", (src[0],))]
        if uids:
            msg_ops.copy(tx, src[0], uids, created.id, expunge_source=True)
        return
    for parent in parents(new):
        if _get(tx, user_id, parent) is None:
            _insert_mailbox(tx, user_id, parent, None, noselect=False)
    family = tx.all(
        "SELECT id, name FROM mailboxes WHERE user_id = ? AND (name = ? OR substr(name, 1, ?) = ?)",
        (user_id, old, len(old) + 1, old + "/"),
    )
    for mailbox_id, name in family:
        renamed = new + name[len(old) :]
        modseq = msg_ops.next_modseq(tx, user_id)
        tx.run(
            "UPDATE mailboxes SET name = ?, highestmodseq = ? WHERE id = ?", (renamed, modseq, mailbox_id)
        )
        tx.run(
            "UPDATE OR REPLACE subscriptions SET name = ? WHERE user_id = ? AND name = ?",
            (renamed, user_id, name),
        )
        tx.changes.append(MailboxRenamed(user_id, modseq, mailbox_id, name, renamed))
