"""The PostgreSQL backend of :class:`courriel.store.api.Store`: several nodes, one store.

Message bytes live in the ``blob_data`` table (bytea, written in the operation's own
transaction, so durable with its COMMIT under ``synchronous_commit = on``), or, with
``[store] blob_dir``, as files in a directory every node mounts (written and fsynced, file
and directory, before the transaction commits; unlinked after the commit that drops the
last reference). See :mod:`.db` for ordering and :mod:`.feed` for changes across nodes.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from array import array
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from courriel.auth import passwords
from courriel.store import names
from courriel.store.api import (
    AccessToken,
    AccountMessage,
    Alias,
    Appended,
    AppendTarget,
    CopyChange,
    Credentials,
    Domain,
    EmailSubmissionRecord,
    Flag,
    FlagMode,
    FlagResult,
    InvalidName,
    Mailbox,
    MailboxChange,
    MailboxSnapshot,
    MessageEvent,
    MessageInfo,
    MessageRecord,
    NewMessage,
    NotFound,
    QueuedMessage,
    QueueRecipient,
    RecipientUpdate,
    SearchKey,
    SieveScript,
    SortKey,
    Store,
    StoreStats,
    Usage,
    User,
    WebSession,
)
from courriel.store.blobs import BlobStore
from courriel.store.changes import ChangeHub, SubscriptionChanged
from courriel.store.content import ContentSummary, summarize
from courriel.store.postgres import accounts, accountsync, extras, schema
from courriel.store.postgres import events as event_ops
from courriel.store.postgres import messages as msg_ops
from courriel.store.postgres import submissions as submission_ops
from courriel.store.postgres import websessions as web_ops
from courriel.store.postgres.check import check_invariants
from courriel.store.postgres.db import Database, Tx
from courriel.store.postgres.feed import Listener
from courriel.store.postgres.search import search_sql, sort_values_sql
from courriel.store.sqlite.rows import (
    INFO_COLS,
    MAILBOX_COLS,
    RECORD_COLS,
    USER_COLS,
    mailbox,
    message_info,
    message_record,
    user,
)


class PostgresStore(Store):
    """Open with :meth:`open` (inside a running event loop); close with :meth:`close`."""

    def __init__(self, dsn: str, blob_dir: Path | None = None, max_mime_depth: int = 100, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.changes = ChangeHub()
        self.max_mime_depth = max_mime_depth
        self.files = BlobStore(blob_dir) if blob_dir is not None else None
        self.db = Database(dsn, self.changes, bytea=self.files is None, pool_size=pool_size)
        self.db.on_dead_blobs = self._unlink
        self.listener = Listener(dsn, self.db.node, self.changes, self._change_batch, self.db.publish_own)
        self.db.barrier = self.listener.barrier  # local feed in global commit order (feed.py)
        self._closed = False

    @classmethod
    async def open(
        cls,
        dsn: str,
        blob_dir: Path | None = None,
        max_mime_depth: int = 100,
        pool_size: int = 10,
        migrate: bool = True,
        listen: bool = True,
    ) -> PostgresStore:
        """Connect; apply pending migrations (``migrate``), else refuse an outdated schema;
        listen for other nodes' changes (``listen``)."""
        store = cls(dsn, blob_dir, max_mime_depth, pool_size)
        store.changes.bind(asyncio.get_running_loop())
        if migrate:
            await asyncio.to_thread(schema.migrate_dsn, dsn)
        else:
            version = await asyncio.to_thread(schema.version_dsn, dsn)
            if version != schema.newest():
                raise RuntimeError(f"database schema {version}, this courriel needs {schema.newest()}: run courriel migrate")
        await store.db.open()
        if listen:
            await store.listener.start()
        return store

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.listener.stop()
        await self.db.close()

    async def _change_batch(self, log_id: int) -> str | None:
        row = await self.db.one("SELECT payload FROM change_log WHERE id = %s", (log_id,))
        return None if row is None else str(row[0])

    def _unlink(self, blobs: list[str]) -> None:
        if self.files is not None:
            for blob in blobs:
                self.files.delete(blob)

    async def _user_id(self, address: str) -> int:
        row = await self.db.one("SELECT id FROM users WHERE lower(address) = lower(%s)", (address,))
        if row is None:
            raise NotFound(f"no user {address}")
        return int(row[0])

    # --- domains, users, aliases -----------------------------------------------------------
    async def add_domain(self, name: str) -> Domain:
        name = names.normalize_domain(name)
        return await self.db.write(lambda tx: accounts.add_domain(tx, name))

    async def list_domains(self) -> list[Domain]:
        rows = await self.db.all('SELECT id, name FROM domains ORDER BY name COLLATE "C"')
        return [Domain(int(r[0]), r[1]) for r in rows]

    async def delete_domain(self, name: str) -> None:
        name = names.normalize_domain(name)
        await self.db.write(lambda tx: accounts.delete_domain(tx, name))

    async def is_local_domain(self, name: str) -> bool:
        try:
            name = names.normalize_domain(name)
        except InvalidName:
            return False
        return await self.db.one("SELECT 1 FROM domains WHERE lower(name) = lower(%s)", (name,)) is not None

    async def add_user(self, address: str, password: str, quota_bytes: int = 0, quota_messages: int = 0) -> User:
        address = names.normalize_address(address)
        secrets_ = await asyncio.to_thread(passwords.derive, password)
        return await self.db.write(lambda tx: accounts.add_user(tx, address, secrets_, quota_bytes, quota_messages))

    async def set_password(self, address: str, password: str) -> None:
        address = names.normalize_address(address)
        secrets_ = await asyncio.to_thread(passwords.derive, password)

        async def op(tx: Tx) -> None:
            user_id = await accounts.user_id_of(tx, address)
            await accounts.set_secrets(tx, user_id, secrets_)
            await web_ops.delete_user(tx, user_id)  # a new password ends the webmail sessions

        await self.db.write(op)

    async def set_apop_secret(self, address: str, secret: str | None) -> None:
        address = names.normalize_address(address)

        async def op(tx: Tx) -> None:
            await tx.run("UPDATE users SET apop_secret = %s WHERE id = %s", (secret, await accounts.user_id_of(tx, address)))

        await self.db.write(op)

    async def set_quota(self, address: str, quota_bytes: int, quota_messages: int) -> None:
        address = names.normalize_address(address)

        async def op(tx: Tx) -> None:
            await tx.run(
                "UPDATE users SET quota_bytes = %s, quota_messages = %s WHERE id = %s",
                (quota_bytes, quota_messages, await accounts.user_id_of(tx, address)),
            )

        await self.db.write(op)

    async def get_user(self, address: str) -> User | None:
        try:
            address = names.normalize_address(address)
        except InvalidName:
            return None
        row = await self.db.one(f"SELECT {USER_COLS} FROM users WHERE lower(address) = lower(%s)", (address,))
        return user(row) if row else None

    async def get_user_by_id(self, user_id: int) -> User | None:
        row = await self.db.one(f"SELECT {USER_COLS} FROM users WHERE id = %s", (user_id,))
        return user(row) if row else None

    async def list_users(self, domain: str | None = None) -> list[User]:
        if domain is None:
            rows = await self.db.all(f'SELECT {USER_COLS} FROM users ORDER BY lower(address) COLLATE "C"')
        else:
            rows = await self.db.all(
                f"SELECT {USER_COLS} FROM users WHERE domain_id = (SELECT id FROM domains WHERE lower(name) = %s)"
                ' ORDER BY lower(address) COLLATE "C"',
                (names.normalize_domain(domain),),
            )
        return [user(r) for r in rows]

    async def delete_user(self, address: str) -> None:
        address = names.normalize_address(address)
        await self.db.write(lambda tx: accounts.delete_user(tx, address))

    async def get_credentials(self, address: str) -> Credentials | None:
        try:
            address = names.normalize_address(address)
        except InvalidName:
            return None
        row = await self.db.one(
            "SELECT id, address, password_hash, scram_salt, scram_iterations, scram_stored_key,"
            " scram_server_key, apop_secret FROM users WHERE lower(address) = lower(%s) AND NOT disabled",
            (address,),
        )
        if row is None:
            return None
        r = list(row)
        for i in (3, 5, 6):
            r[i] = bytes(r[i]) if r[i] is not None else None
        return Credentials(*r)

    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias:
        address = _alias_address(address)
        clean = [names.normalize_address(t) for t in targets]
        if not clean:
            raise InvalidName("an alias needs at least one target")
        await self.db.write(lambda tx: accounts.add_alias(tx, address, clean))
        alias = await self.get_alias(address)
        assert alias is not None
        return alias

    async def delete_alias(self, address: str, targets: Sequence[str] = ()) -> None:
        address = _alias_address(address)
        clean = [names.normalize_address(t) for t in targets]
        await self.db.write(lambda tx: accounts.delete_alias(tx, address, clean))

    async def get_alias(self, address: str) -> Alias | None:
        try:
            address = _alias_address(address)
        except InvalidName:
            return None
        rows = await self.db.all(
            'SELECT address, target FROM aliases WHERE lower(address) = lower(%s) ORDER BY lower(target) COLLATE "C"',
            (address,),
        )
        return Alias(rows[0][0], tuple(r[1] for r in rows)) if rows else None

    async def list_aliases(self) -> list[Alias]:
        grouped: dict[str, list[str]] = {}
        rows = await self.db.all(
            'SELECT address, target FROM aliases ORDER BY lower(address) COLLATE "C", lower(target) COLLATE "C"'
        )
        for address, target in rows:
            grouped.setdefault(address, []).append(target)
        return [Alias(a, tuple(t)) for a, t in grouped.items()]

    # --- mailboxes ---------------------------------------------------------------------------
    async def create_mailbox(self, user_id: int, name: str, special_use: str | None = None) -> Mailbox:
        return await self.db.write(lambda tx: accounts.create_mailbox(tx, user_id, name, special_use))

    async def delete_mailbox(self, user_id: int, name: str) -> None:
        await self.db.write(lambda tx: accounts.delete_mailbox(tx, user_id, name))

    async def rename_mailbox(self, user_id: int, old: str, new: str) -> None:
        await self.db.write(lambda tx: accounts.rename_mailbox(tx, user_id, old, new))

    async def get_mailbox(self, user_id: int, name: str) -> Mailbox | None:
        try:
            name = names.normalize_mailbox(name)
        except InvalidName:
            return None
        row = await self.db.one(
            f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE user_id = %s AND name = %s", (user_id, name)
        )
        return mailbox(row) if row else None

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        row = await self.db.one(f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = %s", (mailbox_id,))
        return mailbox(row) if row else None

    async def list_mailboxes(self, user_id: int) -> list[Mailbox]:
        rows = await self.db.all(
            f'SELECT {MAILBOX_COLS} FROM mailboxes WHERE user_id = %s ORDER BY name COLLATE "C"', (user_id,)
        )
        return [mailbox(r) for r in rows]

    async def subscribe(self, user_id: int, name: str) -> None:
        name = names.normalize_mailbox(name)

        async def op(tx: Tx) -> None:
            if await tx.run(
                "INSERT INTO subscriptions (user_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (user_id, name)
            ):
                tx.changes.append(SubscriptionChanged(user_id, 0, name, True))

        await self.db.write(op)

    async def unsubscribe(self, user_id: int, name: str) -> None:
        name = names.normalize_mailbox(name)

        async def op(tx: Tx) -> None:
            if await tx.run("DELETE FROM subscriptions WHERE user_id = %s AND name = %s", (user_id, name)):
                tx.changes.append(SubscriptionChanged(user_id, 0, name, False))

        await self.db.write(op)

    async def list_subscriptions(self, user_id: int) -> list[str]:
        rows = await self.db.all(
            'SELECT name FROM subscriptions WHERE user_id = %s ORDER BY name COLLATE "C"', (user_id,)
        )
        return [r[0] for r in rows]

    # --- messages --------------------------------------------------------------------------
    def _prepare(self, data: bytes) -> tuple[ContentSummary, str]:
        """Parse, and (files mode) write the file with its directory durable, in a thread."""
        summary = summarize(data, self.max_mime_depth)
        return summary, self._put_blob(data)

    def _put_blob(self, data: bytes) -> str:
        if self.files is None:
            return f"db/{secrets.token_hex(12)}"
        blob = self.files.put(data, sync=True)
        try:
            self.files.sync([blob], files=False)
        except BaseException:
            self.files.delete(blob)
            raise
        return blob

    def _bytes(self, data: bytes) -> bytes | None:
        return data if self.files is None else None

    async def _guarded(self, blobs: list[str], op: Any) -> Any:
        """Run a write; on failure, remove files written for it (files mode)."""
        try:
            return await self.db.write(op)
        except BaseException:
            self._unlink(blobs)
            raise

    async def deliver(
        self,
        data: bytes,
        targets: Sequence[AppendTarget],
        internal_date: datetime | None = None,
        mail_from: str | None = None,
        check_quota: bool = True,
    ) -> list[Appended]:
        if not targets:
            return []
        for t in targets:
            names.encode_keywords(t.keywords)
        idate = int(internal_date.timestamp()) if internal_date is not None else int(time.time())
        summary, blob = await asyncio.to_thread(self._prepare, data)
        targets = list(targets)
        raw = self._bytes(data)
        result: list[Appended] = await self._guarded(
            [blob], lambda tx: msg_ops.deliver(tx, blob, raw, summary, targets, idate, mail_from, check_quota)
        )
        return result

    async def append_many(self, mailbox_id: int, items: Sequence[NewMessage]) -> list[Appended]:
        if not items:
            return []
        for item in items:
            names.encode_keywords(item.keywords)
        prepared = await asyncio.gather(*(asyncio.to_thread(self._prepare, i.data) for i in items))
        now = int(time.time())
        jobs = [
            (blob, self._bytes(item.data), summary, [AppendTarget(mailbox_id, item.flags, item.keywords)],
             int(item.internal_date.timestamp()) if item.internal_date is not None else now, item.mail_from)
            for item, (summary, blob) in zip(items, prepared)
        ]  # fmt: skip

        async def op(tx: Tx) -> list[Appended]:
            out: list[Appended] = []
            for blob, raw, summary, targets, idate, mail_from in jobs:
                out.extend(await msg_ops.deliver(tx, blob, raw, summary, targets, idate, mail_from, True))
            return out

        result: list[Appended] = await self._guarded([j[0] for j in jobs], op)
        return result

    async def copy(self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int) -> list[tuple[int, int]]:
        uids = list(uids)
        return await self.db.write(lambda tx: msg_ops.copy(tx, src_mailbox_id, uids, dst_mailbox_id, False))

    async def move(self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int) -> list[tuple[int, int]]:
        uids = list(uids)
        if src_mailbox_id == dst_mailbox_id:
            raise InvalidName("source and destination are the same mailbox")
        return await self.db.write(lambda tx: msg_ops.copy(tx, src_mailbox_id, uids, dst_mailbox_id, True))

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: FlagMode,
        flags: Flag,
        keywords: frozenset[str] = frozenset(),
        unchanged_since: int | None = None,
    ) -> FlagResult:
        uids = list(uids)
        return await self.db.write(
            lambda tx: msg_ops.store_flags(tx, mailbox_id, uids, mode, flags, keywords, unchanged_since)
        )

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        uid_list = list(uids) if uids is not None else None
        return await self.db.write(lambda tx: msg_ops.expunge(tx, mailbox_id, uid_list))

    async def delete_messages(self, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        uid_list = list(uids)
        return await self.db.write(lambda tx: msg_ops.delete_messages(tx, mailbox_id, uid_list))

    async def list_messages(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[MessageInfo]:
        if uids is None:
            rows = await self.db.all(
                f"SELECT {INFO_COLS} FROM messages m WHERE m.mailbox_id = %s ORDER BY m.uid", (mailbox_id,)
            )
        else:
            rows = await self.db.all(
                f"SELECT {INFO_COLS} FROM messages m WHERE m.mailbox_id = %s AND m.uid = ANY(%s::bigint[])"
                " ORDER BY m.uid",
                (mailbox_id, sorted(set(uids))),
            )
        return [message_info(r) for r in rows]

    async def changed_since(self, mailbox_id: int, modseq: int) -> tuple[list[MessageInfo], list[int]]:
        async def run(tx: Tx) -> tuple[list[Any], list[Any]]:
            changed = await tx.all(
                f"SELECT {INFO_COLS} FROM messages m WHERE m.mailbox_id = %s AND m.modseq > %s ORDER BY m.uid",
                (mailbox_id, modseq),
            )
            gone = await tx.all(
                "SELECT uid FROM expunged WHERE mailbox_id = %s AND modseq > %s ORDER BY uid", (mailbox_id, modseq)
            )
            return changed, gone

        changed, gone = await self.db.read(run, snapshot=True)
        return [message_info(r) for r in changed], [int(r[0]) for r in gone]

    async def get_records(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageRecord]:
        rows = await self.db.all(
            f"SELECT {RECORD_COLS} FROM messages m JOIN contents c ON c.id = m.content_id"
            " WHERE m.mailbox_id = %s AND m.uid = ANY(%s::bigint[]) ORDER BY m.uid",
            (mailbox_id, sorted(set(uids))),
        )
        return [message_record(r) for r in rows]

    async def read_message(self, blob: str) -> bytes:
        if self.files is not None:
            return await asyncio.to_thread(self.files.get, blob)
        rows = await self.db.all("SELECT data FROM blob_data WHERE blob = %s", (blob,), binary=True)
        if not rows:
            raise FileNotFoundError(f"no message data {blob}")
        return bytes(rows[0][0])

    async def read_messages(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        if self.files is not None:
            return await super().read_messages(mailbox_id, uids)
        rows = await self.db.all(
            "SELECT m.uid, b.data FROM messages m JOIN contents c ON c.id = m.content_id"
            " JOIN blob_data b ON b.blob = c.blob WHERE m.mailbox_id = %s AND m.uid = ANY(%s::bigint[])",
            (mailbox_id, sorted(set(uids))),
            binary=True,
        )
        return {int(r[0]): bytes(r[1]) for r in rows}

    async def snapshot(self, mailbox_id: int) -> MailboxSnapshot:
        async def run(tx: Tx) -> MailboxSnapshot:
            row = await tx.one(f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = %s", (mailbox_id,))
            if row is None:
                raise NotFound("no such mailbox")
            packed = await tx.one(
                "SELECT COALESCE(array_agg(uid ORDER BY uid), '{}'), COALESCE(array_agg(flags ORDER BY uid), '{}'),"
                " COALESCE(array_agg(modseq ORDER BY uid), '{}'), COALESCE(array_agg(size ORDER BY uid), '{}'),"
                " COALESCE(array_agg(content_id ORDER BY uid), '{}') FROM messages WHERE mailbox_id = %s",
                (mailbox_id,),
            )
            assert packed is not None
            kws = await tx.all(
                "SELECT uid, keywords FROM messages WHERE mailbox_id = %s AND keywords != ''", (mailbox_id,)
            )
            return MailboxSnapshot(
                mailbox(row), array("I", packed[0]), array("B", packed[1]), array("Q", packed[2]),
                {int(uid): names.decode_keywords(text) for uid, text in kws},
                array("I", packed[3]), array("Q", packed[4]),
            )  # fmt: skip

        return await self.db.read(run, snapshot=True)

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        sql, args = search_sql(mailbox_id, key)
        return [int(r[0]) for r in await self.db.all(sql, args)]

    async def sort(self, mailbox_id: int, keys: Sequence[SortKey], key: SearchKey) -> list[int]:
        sql, args = search_sql(mailbox_id, key, keys)
        return [int(r[0]) for r in await self.db.all(sql, args)]

    async def sort_values(
        self, mailbox_id: int, keys: Sequence[SortKey], since_uid: int = 1
    ) -> list[tuple[int | str, ...]] | None:
        sql, args = sort_values_sql(mailbox_id, keys, since_uid)
        return [tuple(r) for r in await self.db.all(sql, args)]

    async def thread_rows(self, mailbox_id: int, since_uid: int = 1) -> list[tuple[int, str, int]]:
        # contents.thread_id and messages.sort_date are kept at delivery.
        rows = await self.db.all(
            "SELECT m.uid, COALESCE(c.thread_id, 'TC' || c.id), m.sort_date FROM messages m"
            " JOIN contents c ON c.id = m.content_id WHERE m.mailbox_id = %s AND m.uid >= %s",
            (mailbox_id, since_uid),
        )
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def claim_recent(self, mailbox_id: int, upto_uid: int | None = None) -> int:
        async def op(tx: Tx) -> int:
            # The owner's row first, as every write takes it (db.py's lock order): in a batch
            # with another operation of that user, the mailbox row taken first would deadlock
            # with another node's transaction holding the user and waiting for the mailbox.
            # Two round trips: the owner's row locked (its id found by the join), then, read
            # after the lock (a new snapshot), \Recent's bound read and advanced at once.
            owner = await tx.one(
                "SELECT u.id FROM mailboxes mb JOIN users u ON u.id = mb.user_id WHERE mb.id = %s"
                " FOR NO KEY UPDATE OF u",
                (mailbox_id,),
            )
            if owner is None:
                raise NotFound("no such mailbox")
            row = await tx.one(
                "WITH o AS (SELECT recent_uid, LEAST(COALESCE(%s::bigint, uidnext), uidnext) AS upto"
                " FROM mailboxes WHERE id = %s),"
                " w AS (UPDATE mailboxes m SET recent_uid = o.upto FROM o WHERE m.id = %s AND o.upto > o.recent_uid)"
                " SELECT recent_uid FROM o",
                (upto_uid, mailbox_id, mailbox_id),
            )
            if row is None:
                raise NotFound("no such mailbox")
            return int(row[0])

        # Nothing to claim (another session took them, or none came): answered from the
        # committed row without a transaction; recent_uid only grows, so a later claim
        # could not return less.
        row = await self.db.one("SELECT recent_uid, uidnext FROM mailboxes WHERE id = %s", (mailbox_id,))
        if row is None:
            raise NotFound("no such mailbox")
        if (int(row[1]) if upto_uid is None else min(upto_uid, int(row[1]))) <= int(row[0]):
            return int(row[0])
        return await self.db.write(op)

    async def usage(self, user_id: int) -> Usage:
        row = await self.db.one(
            "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(messages), 0) FROM mailboxes WHERE user_id = %s", (user_id,)
        )
        assert row is not None
        return Usage(int(row[0]), int(row[1]))

    async def stats(self) -> StoreStats:
        async def run(tx: Tx) -> StoreStats:
            users = await tx.one("SELECT COUNT(*) FROM users")
            boxes = await tx.one("SELECT COUNT(*), COALESCE(SUM(messages), 0), COALESCE(SUM(size), 0) FROM mailboxes")
            files = await tx.one("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM contents")
            assert users and boxes and files
            return StoreStats(
                int(users[0]), int(boxes[0]), int(boxes[1]), int(boxes[2]),
                {"files": int(files[0]), "file_bytes": int(files[1])},
            )  # fmt: skip

        return await self.db.read(run, snapshot=True)

    async def check(self) -> list[str]:
        return await self.db.read(lambda tx: check_invariants(tx, self.files), snapshot=True)

    # --- annotations (RFC 5464) -----------------------------------------------------------------
    async def get_metadata(self, user_id: int, mailbox_id: int | None) -> dict[str, bytes]:
        return await self.db.read(lambda tx: extras.get_metadata(tx, user_id, mailbox_id))

    async def set_metadata(
        self, user_id: int, mailbox_id: int | None, entries: dict[str, bytes | None], max_entries: int = 0
    ) -> None:
        entries = dict(entries)
        await self.db.write(lambda tx: extras.set_metadata(tx, user_id, mailbox_id, entries, max_entries))

    # --- outbound queue ---------------------------------------------------------------------------
    async def enqueue(
        self,
        data: bytes,
        mail_from: str,
        recipients: Sequence[QueueRecipient],
        envid: str | None = None,
        ret: str | None = None,
        smtputf8: bool = False,
        body_8bit: bool = False,
        auth_user: str | None = None,
        source: str = "",
    ) -> int:
        if not recipients:
            raise InvalidName("nothing to queue: no recipients")
        rcpts = list(recipients)
        blob = await asyncio.to_thread(self._put_blob, data)
        raw = self._bytes(data)
        result: int = await self._guarded(
            [blob],
            lambda tx: extras.enqueue(
                tx, blob, raw, len(data), mail_from, rcpts, envid, ret, smtputf8, body_8bit, auth_user, source
            ),
        )
        return result

    async def list_queue(self) -> list[QueuedMessage]:
        return await self.db.read(lambda tx: extras.load(tx, None), snapshot=True)

    async def delete_queued(self, queue_id: int) -> None:
        await self.db.write(lambda tx: extras.delete(tx, queue_id))

    async def due_queue(self, now: datetime, limit: int = 1000) -> list[QueuedMessage]:
        t = int(now.timestamp())
        return await self.db.write(lambda tx: extras.due(tx, self.db.node, t, limit))

    async def update_queue(self, updates: Sequence[RecipientUpdate]) -> list[int]:
        items = list(updates)
        return await self.db.write(lambda tx: extras.update(tx, items))

    async def flush_queue(self) -> int:
        return await self.db.write(extras.flush)

    # --- Sieve scripts and vacation tracking -----------------------------------------------------
    async def list_sieve_scripts(self, user_id: int) -> list[SieveScript]:
        return await self.db.read(lambda tx: extras.list_scripts(tx, user_id))

    async def get_sieve_script(self, user_id: int, name: str | None) -> SieveScript | None:
        return await self.db.read(lambda tx: extras.get_script(tx, user_id, name))

    async def delivery_sieve_scripts(self, user_id: int, system: str) -> tuple[SieveScript | None, SieveScript | None]:
        return await self.db.read(lambda tx: extras.delivery_scripts(tx, user_id, system))

    async def put_sieve_script(
        self, user_id: int, name: str, content: str, max_scripts: int = 0, max_size: int = 0
    ) -> None:
        await self.db.write(lambda tx: extras.put_script(tx, user_id, name, content, max_scripts, max_size))

    async def set_active_sieve_script(self, user_id: int, name: str | None) -> None:
        await self.db.write(lambda tx: extras.set_active(tx, user_id, name))

    async def delete_sieve_script(self, user_id: int, name: str) -> None:
        await self.db.write(lambda tx: extras.delete_script(tx, user_id, name))

    async def rename_sieve_script(self, user_id: int, old: str, new: str) -> None:
        await self.db.write(lambda tx: extras.rename_script(tx, user_id, old, new))

    async def vacation_due(self, user_id: int, handle: str, sender: str, period: int) -> bool:
        now = int(time.time())
        return await self.db.write(lambda tx: extras.vacation_due(tx, user_id, handle, sender.lower(), now, period))

    # --- account-wide views and change tracking (JMAP), bearer tokens ----------------------
    async def account_messages(self, user_id: int) -> list[AccountMessage]:
        return await self.db.read(lambda tx: accountsync.account_messages(tx, user_id), snapshot=True)

    async def account_messages_of(self, user_id: int, content_ids: Sequence[int]) -> list[AccountMessage]:
        ids = list(content_ids)
        return await self.db.read(lambda tx: accountsync.account_messages(tx, user_id, ids), snapshot=True)

    async def account_received(self, user_id: int, mailbox_id: int | None) -> list[tuple[int, float]]:
        return await self.db.read(lambda tx: accountsync.account_received(tx, user_id, mailbox_id))

    async def received_page(
        self, user_id: int, mailbox_id: int, count: int, total: bool
    ) -> tuple[list[tuple[int, float]], int | None]:
        return await self.db.read(
            lambda tx: accountsync.received_page(tx, user_id, mailbox_id, count, total), snapshot=True
        )

    async def message_changes(self, user_id: int, since: int) -> tuple[list[CopyChange], bool]:
        return await self.db.read(lambda tx: accountsync.message_changes(tx, user_id, since), snapshot=True)

    async def mailbox_changes(self, user_id: int, since: int) -> list[MailboxChange]:
        return await self.db.read(lambda tx: accountsync.mailbox_changes(tx, user_id, since), snapshot=True)

    async def add_token(self, user_id: int, token_hash: bytes, label: str = "") -> AccessToken:
        return await self.db.write(lambda tx: accountsync.add_token(tx, user_id, token_hash, label))

    async def list_tokens(self, user_id: int | None = None) -> list[AccessToken]:
        return await self.db.read(lambda tx: accountsync.list_tokens(tx, user_id))

    async def delete_token(self, token_id: int) -> None:
        await self.db.write(lambda tx: accountsync.delete_token(tx, token_id))

    async def token_user(self, token_hash: bytes) -> User | None:
        user_id = await self.db.read(lambda tx: accountsync.token_user_id(tx, token_hash))
        return None if user_id is None else await self.get_user_by_id(user_id)

    # --- message events (journeys) ----------------------------------------------------------
    async def add_message_events(self, events: Sequence[MessageEvent]) -> None:
        if events:
            batch = list(events)
            await self.db.write(lambda tx: event_ops.add(tx, batch))

    async def message_events(self, user_id: int, content_id: int) -> list[MessageEvent]:
        return await self.db.read(lambda tx: event_ops.of(tx, user_id, content_id))

    async def prune_message_events(self, before: float) -> int:
        return await self.db.write(lambda tx: event_ops.prune(tx, before))

    # --- webmail sessions -------------------------------------------------------------------
    async def add_web_session(
        self, user_id: int, token_hash: bytes, secret: str, created: float, expires: float,
        client_ip: str = "", user_agent: str = "",
    ) -> WebSession:  # fmt: skip
        return await self.db.write(
            lambda tx: web_ops.add(tx, user_id, token_hash, secret, created, expires, client_ip, user_agent)
        )

    async def web_session(self, token_hash: bytes) -> WebSession | None:
        return await self.db.read(lambda tx: web_ops.by_hash(tx, token_hash))

    async def web_session_by_id(self, session_id: int) -> WebSession | None:
        return await self.db.read(lambda tx: web_ops.by_id(tx, session_id))

    async def list_web_sessions(self, user_id: int) -> list[WebSession]:
        return await self.db.read(lambda tx: web_ops.of_user(tx, user_id))

    async def touch_web_sessions(self, seen: Sequence[tuple[int, float]]) -> None:
        if seen:
            batch = list(seen)
            await self.db.write(lambda tx: web_ops.touch(tx, batch))

    async def delete_web_session(self, session_id: int) -> None:
        await self.db.write(lambda tx: web_ops.delete(tx, session_id))

    async def delete_web_sessions(self, user_id: int) -> int:
        return await self.db.write(lambda tx: web_ops.delete_user(tx, user_id))

    async def prune_web_sessions(self, idle_before: float, now: float) -> int:
        return await self.db.write(lambda tx: web_ops.prune(tx, idle_before, now))

    # --- JMAP EmailSubmission records ---------------------------------------------------------
    async def add_email_submission(self, record: EmailSubmissionRecord) -> int:
        return await self.db.write(lambda tx: submission_ops.add(tx, record))

    async def email_submissions(self, user_id: int, tombstones: bool = False) -> list[EmailSubmissionRecord]:
        return await self.db.read(lambda tx: submission_ops.of(tx, user_id, tombstones))

    async def update_email_submission(self, user_id: int, submission_id: str, delivery: dict[str, Any]) -> int:
        return await self.db.write(lambda tx: submission_ops.update(tx, user_id, submission_id, delivery))

    async def destroy_email_submissions(self, user_id: int, ids: Sequence[str]) -> list[str]:
        return await self.db.write(lambda tx: submission_ops.destroy(tx, user_id, ids))


def _alias_address(address: str) -> str:
    address = address.strip()
    if address.startswith("@"):
        return "@" + names.normalize_domain(address[1:])
    return names.normalize_address(address)
