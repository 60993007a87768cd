"""The SQLite backend of :class:`courriel.store.api.Store`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from array import array
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
from courriel.store.content import searchable_text, summarize
from courriel.store.sqlite import accounts, accountsync, db, fulltext
from courriel.store.sqlite import append as append_ops
from courriel.store.sqlite import events as event_ops
from courriel.store.sqlite import messages as msg_ops
from courriel.store.sqlite import metadata as meta_ops
from courriel.store.sqlite import queue as queue_ops
from courriel.store.sqlite import sieve as sieve_ops
from courriel.store.sqlite import submissions as submission_ops
from courriel.store.sqlite import websessions as web_ops
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
from courriel.store.sqlite.search import (
    register_functions,
    search_sql,
    sort_values_sql,
    uses_fulltext,
)

#: Message files created ahead, a batch per directory fsync (see courriel.store.blobs).
BLOB_POOL = 32


class SQLiteStore(Store):
    """Open with :meth:`open` (from inside a running event loop); close with :meth:`close`."""

    def __init__(self, db_path: Path, blob_root: Path, max_mime_depth: int = 100) -> None:
        self.db_path = db_path
        self.blobs = BlobStore(blob_root, pool=BLOB_POOL)
        self.changes = ChangeHub()
        self.max_mime_depth = max_mime_depth
        self._writer = db.Writer(db_path, self.blobs, self.changes)
        #: Threads writing and fsyncing the file of an APPEND (see .append).
        self._files = ThreadPoolExecutor(max_workers=4, thread_name_prefix="courriel-store-file")
        self._readers = db.Readers(db_path, on_connect=self._register)
        self._closed = False
        self._backfill: asyncio.Task[None] | None = None
        self._fulltext = fulltext.PendingIndex(self)

    def _register(self, conn: sqlite3.Connection) -> None:
        register_functions(conn, self.blobs.get, searchable_text)

    @classmethod
    async def open(cls, db_path: Path, blob_root: Path, max_mime_depth: int = 100) -> SQLiteStore:
        store = cls(db_path, blob_root, max_mime_depth)
        store.changes.bind(asyncio.get_running_loop())
        await asyncio.to_thread(store._migrate)
        store._writer.start()
        store._backfill = asyncio.create_task(fulltext.run_backfill(store))
        return store

    def _migrate(self) -> None:
        conn = db.connect(self.db_path)
        try:
            db.migrate(conn)
        finally:
            conn.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # what is left is indexed at the next open
            await self._fulltext.close()
        if self._backfill is not None:
            self._backfill.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._backfill
        await asyncio.to_thread(self._writer.stop)
        self._files.shutdown(wait=True)
        self._readers.close()
        self.blobs.release_pool()

    # --- helpers ---------------------------------------------------------------------------
    async def _write(self, op: db.Op, orphan_blobs: list[str] | None = None) -> Any:
        return await self._writer.submit(op, orphan_blobs)

    async def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return await self._readers.run(lambda c: c.execute(sql, args).fetchone())

    async def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return await self._readers.run(lambda c: c.execute(sql, args).fetchall())

    async def _user_id(self, address: str) -> int:
        row = await self._one("SELECT id FROM users WHERE address = ?", (names.normalize_address(address),))
        if row is None:
            raise NotFound(f"no user {address}")
        return int(row[0])

    # --- domains, users, aliases ---------------------------------------------------------------
    async def add_domain(self, name: str) -> Domain:
        name = names.normalize_domain(name)
        result: Domain = await self._write(lambda tx: accounts.add_domain(tx, name))
        return result

    async def list_domains(self) -> list[Domain]:
        return [Domain(r[0], r[1]) for r in await self._all("SELECT id, name FROM domains ORDER BY name")]

    async def delete_domain(self, name: str) -> None:
        name = names.normalize_domain(name)
        await self._write(lambda tx: accounts.delete_domain(tx, name))

    async def is_local_domain(self, name: str) -> bool:
        try:
            name = names.normalize_domain(name)
        except InvalidName:
            return False
        return await self._one("SELECT 1 FROM domains WHERE name = ?", (name,)) is not None

    async def add_user(self, address: str, password: str, quota_bytes: int = 0, quota_messages: int = 0) -> User:
        address = names.normalize_address(address)
        secrets = await asyncio.to_thread(passwords.derive, password)
        result: User = await self._write(
            lambda tx: accounts.add_user(tx, address, secrets, quota_bytes, quota_messages)
        )
        return result

    async def set_password(self, address: str, password: str) -> None:
        address = names.normalize_address(address)
        secrets = await asyncio.to_thread(passwords.derive, password)

        def op(tx: db.Tx) -> None:
            user_id = accounts.user_id_of(tx, address)
            accounts.set_secrets(tx, user_id, secrets)
            web_ops.delete_user(tx, user_id)  # a new password ends the webmail sessions

        await self._write(op)

    async def set_apop_secret(self, address: str, secret: str | None) -> None:
        address = names.normalize_address(address)

        def op(tx: db.Tx) -> None:
            tx.run("UPDATE users SET apop_secret = ? WHERE id = ?", (secret, accounts.user_id_of(tx, address)))

        await self._write(op)

    async def set_quota(self, address: str, quota_bytes: int, quota_messages: int) -> None:
        address = names.normalize_address(address)

        def op(tx: db.Tx) -> None:
            tx.run(
                "UPDATE users SET quota_bytes = ?, quota_messages = ? WHERE id = ?",
                (quota_bytes, quota_messages, accounts.user_id_of(tx, address)),
            )

        await self._write(op)

    async def get_user(self, address: str) -> User | None:
        try:
            address = names.normalize_address(address)
        except InvalidName:
            return None
        row = await self._one(f"SELECT {USER_COLS} FROM users WHERE address = ?", (address,))
        return user(row) if row else None

    async def get_user_by_id(self, user_id: int) -> User | None:
        row = await self._one(f"SELECT {USER_COLS} FROM users WHERE id = ?", (user_id,))
        return user(row) if row else None

    async def list_users(self, domain: str | None = None) -> list[User]:
        if domain is None:
            rows = await self._all(f"SELECT {USER_COLS} FROM users ORDER BY address")
        else:
            rows = await self._all(
                f"SELECT {USER_COLS} FROM users WHERE domain_id = (SELECT id FROM domains WHERE name = ?)"
                " ORDER BY address",
                (names.normalize_domain(domain),),
            )
        return [user(r) for r in rows]

    async def delete_user(self, address: str) -> None:
        address = names.normalize_address(address)
        await self._write(lambda tx: accounts.delete_user(tx, address))

    async def get_credentials(self, address: str) -> Credentials | None:
        try:
            address = names.normalize_address(address)
        except InvalidName:
            return None
        row = await self._one(
            "SELECT id, address, password_hash, scram_salt, scram_iterations, scram_stored_key,"
            " scram_server_key, apop_secret FROM users WHERE address = ? AND disabled = 0",
            (address,),
        )
        return Credentials(*row) if row else None

    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias:
        address = _alias_address(address)
        clean = [names.normalize_address(t) for t in targets]
        if not clean:
            raise InvalidName("an alias needs at least one target")
        await self._write(lambda tx: accounts.add_alias(tx, address, clean))
        alias = await self.get_alias(address)
        assert alias is not None
        return alias

    async def delete_alias(self, address: str, targets: Sequence[str] = ()) -> None:
        address = _alias_address(address)
        clean = [names.normalize_address(t) for t in targets]
        await self._write(lambda tx: accounts.delete_alias(tx, address, clean))

    async def get_alias(self, address: str) -> Alias | None:
        try:
            address = _alias_address(address)
        except InvalidName:
            return None
        rows = await self._all("SELECT target FROM aliases WHERE address = ? ORDER BY target", (address,))
        return Alias(address, tuple(r[0] for r in rows)) if rows else None

    async def list_aliases(self) -> list[Alias]:
        grouped: dict[str, list[str]] = {}
        for address, target in await self._all("SELECT address, target FROM aliases ORDER BY address, target"):
            grouped.setdefault(address, []).append(target)
        return [Alias(a, tuple(t)) for a, t in grouped.items()]

    # --- mailboxes -------------------------------------------------------------------------------
    async def create_mailbox(self, user_id: int, name: str, special_use: str | None = None) -> Mailbox:
        result: Mailbox = await self._write(lambda tx: accounts.create_mailbox(tx, user_id, name, special_use))
        return result

    async def delete_mailbox(self, user_id: int, name: str) -> None:
        await self._write(lambda tx: accounts.delete_mailbox(tx, user_id, name))

    async def rename_mailbox(self, user_id: int, old: str, new: str) -> None:
        await self._write(lambda tx: accounts.rename_mailbox(tx, user_id, old, new))

    async def get_mailbox(self, user_id: int, name: str) -> Mailbox | None:
        try:
            name = names.normalize_mailbox(name)
        except InvalidName:
            return None
        row = await self._one(f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE user_id = ? AND name = ?", (user_id, name))
        return mailbox(row) if row else None

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        row = await self._one(f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = ?", (mailbox_id,))
        return mailbox(row) if row else None

    async def list_mailboxes(self, user_id: int) -> list[Mailbox]:
        rows = await self._all(f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE user_id = ? ORDER BY name", (user_id,))
        return [mailbox(r) for r in rows]

    async def subscribe(self, user_id: int, name: str) -> None:
        name = names.normalize_mailbox(name)

        def op(tx: db.Tx) -> None:
            cur = tx.run("INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?, ?)", (user_id, name))
            if cur.rowcount:
                tx.changes.append(SubscriptionChanged(user_id, 0, name, True))

        await self._write(op)

    async def unsubscribe(self, user_id: int, name: str) -> None:
        name = names.normalize_mailbox(name)

        def op(tx: db.Tx) -> None:
            cur = tx.run("DELETE FROM subscriptions WHERE user_id = ? AND name = ?", (user_id, name))
            if cur.rowcount:
                tx.changes.append(SubscriptionChanged(user_id, 0, name, False))

        await self._write(op)

    async def list_subscriptions(self, user_id: int) -> list[str]:
        rows = await self._all("SELECT name FROM subscriptions WHERE user_id = ? ORDER BY name", (user_id,))
        return [r[0] for r in rows]

    # --- messages --------------------------------------------------------------------------------
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
        result: list[Appended] = await self._write(
            lambda tx: msg_ops.deliver(tx, blob, summary, targets, idate, mail_from, check_quota),
            orphan_blobs=[blob],
        )
        await self._fulltext.add([(result[0].content_id, summary.head_text, summary.body_text)])
        return result

    async def append(
        self,
        mailbox_id: int,
        data: bytes,
        flags: Flag = Flag(0),
        keywords: frozenset[str] = frozenset(),
        internal_date: datetime | None = None,
        mail_from: str | None = None,
    ) -> Appended:
        # The file's fsync in parallel with the parse and the rows (see .append).
        names.encode_keywords(keywords)
        idate = int(internal_date.timestamp()) if internal_date is not None else int(time.time())
        blob = self.blobs.reserve() or await asyncio.to_thread(self.blobs.reserve, True)
        if blob is None:  # no pool of files
            return await super().append(mailbox_id, data, flags, keywords, internal_date, mail_from)
        if self.blobs.low():
            self._files.submit(self.blobs.top_up)
        target = AppendTarget(mailbox_id, flags, keywords)
        return await append_ops.append_one(self, self._files, blob, data, target, idate, mail_from)

    async def append_many(self, mailbox_id: int, items: Sequence[NewMessage]) -> list[Appended]:
        if not items:
            return []
        for item in items:
            names.encode_keywords(item.keywords)
        prepared = await asyncio.gather(*(asyncio.to_thread(self._prepare, i.data) for i in items))
        now = int(time.time())
        jobs = [
            (
                blob,
                summary,
                [AppendTarget(mailbox_id, item.flags, item.keywords)],
                int(item.internal_date.timestamp()) if item.internal_date is not None else now,
                item.mail_from,
            )
            for item, (summary, blob) in zip(items, prepared)
        ]

        def op(tx: db.Tx) -> list[Appended]:
            out: list[Appended] = []
            for blob, summary, targets, idate, mail_from in jobs:
                out.extend(msg_ops.deliver(tx, blob, summary, targets, idate, mail_from, True))
            return out

        result: list[Appended] = await self._write(op, orphan_blobs=[j[0] for j in jobs])
        # one Appended per job (one target each), in order
        await self._fulltext.add([(a.content_id, j[1].head_text, j[1].body_text) for a, j in zip(result, jobs)])
        return result

    def _prepare(self, data: bytes) -> tuple[Any, str]:
        summary = summarize(data, self.max_mime_depth)
        return summary, self.blobs.put(data, sync=False)

    async def copy(self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int) -> list[tuple[int, int]]:
        uids = list(uids)
        result: list[tuple[int, int]] = await self._write(
            lambda tx: msg_ops.copy(tx, src_mailbox_id, uids, dst_mailbox_id, expunge_source=False)
        )
        return result

    async def move(self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int) -> list[tuple[int, int]]:
        uids = list(uids)
        if src_mailbox_id == dst_mailbox_id:
            raise InvalidName("source and destination are the same mailbox")
        result: list[tuple[int, int]] = await self._write(
            lambda tx: msg_ops.copy(tx, src_mailbox_id, uids, dst_mailbox_id, expunge_source=True)
        )
        return result

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
        result: FlagResult = await self._write(
            lambda tx: msg_ops.store_flags(tx, mailbox_id, uids, mode, flags, keywords, unchanged_since)
        )
        return result

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        uid_list = list(uids) if uids is not None else None
        result: list[int] = await self._write(lambda tx: msg_ops.expunge(tx, mailbox_id, uid_list))
        return result

    async def delete_messages(self, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        uid_list = list(uids)
        result: list[int] = await self._write(lambda tx: msg_ops.delete_messages(tx, mailbox_id, uid_list))
        return result

    async def list_messages(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[MessageInfo]:
        if uids is None:
            rows = await self._all(
                f"SELECT {INFO_COLS} FROM messages m WHERE m.mailbox_id = ? ORDER BY m.uid", (mailbox_id,)
            )
        else:
            wanted = sorted(set(uids))
            rows = await self._readers.run(lambda c: _chunked(c, f"SELECT {INFO_COLS} FROM messages m", mailbox_id, wanted))
        return [message_info(r) for r in rows]

    async def changed_since(self, mailbox_id: int, modseq: int) -> tuple[list[MessageInfo], list[int]]:
        def run(c: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            changed = c.execute(
                f"SELECT {INFO_COLS} FROM messages m WHERE m.mailbox_id = ? AND m.modseq > ? ORDER BY m.uid",
                (mailbox_id, modseq),
            ).fetchall()
            gone = c.execute(
                "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid", (mailbox_id, modseq)
            ).fetchall()
            return changed, gone

        changed, gone = await self._readers.run(run)
        return [message_info(r) for r in changed], [r[0] for r in gone]

    async def get_records(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageRecord]:
        wanted = sorted(set(uids))
        base = f"SELECT {RECORD_COLS} FROM messages m JOIN contents c ON c.id = m.content_id"
        rows = await self._readers.run(lambda c: _chunked(c, base, mailbox_id, wanted))
        return [message_record(r) for r in rows]

    async def read_message(self, blob: str) -> bytes:
        return await asyncio.to_thread(self.blobs.get, blob)

    async def read_messages(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        wanted = sorted(set(uids))
        base = "SELECT m.uid, c.blob, c.size FROM messages m JOIN contents c ON c.id = m.content_id"

        def run(c: sqlite3.Connection) -> dict[int, bytes]:
            # One reader-thread call for the rows and the files (read with one os.read each:
            # the files are immutable and their size is known).
            out: dict[int, bytes] = {}
            for uid, blob, size in _chunked(c, base, mailbox_id, wanted):
                try:
                    fd = os.open(self.blobs.path(blob), os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    chunks = [os.read(fd, size + 1)]
                    if len(chunks[0]) != size:  # a short read, or not the recorded size: to the end
                        while more := os.read(fd, 1 << 20):
                            chunks.append(more)
                finally:
                    os.close(fd)
                out[uid] = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            return out

        return await self._readers.run(run)

    async def snapshot(self, mailbox_id: int) -> MailboxSnapshot:
        def run(c: sqlite3.Connection) -> MailboxSnapshot:
            c.execute("BEGIN")  # one read transaction: the mailbox row matches the messages
            try:
                row = c.execute(f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
                if row is None:
                    raise NotFound("no such mailbox")
                rows = c.execute(
                    "SELECT uid, flags, modseq, size, content_id FROM messages WHERE mailbox_id = ? ORDER BY uid",
                    (mailbox_id,),
                ).fetchall()
                kws = c.execute(
                    "SELECT uid, keywords FROM messages WHERE mailbox_id = ? AND keywords != ''", (mailbox_id,)
                ).fetchall()
            finally:
                c.execute("COMMIT")
            uids, flags, modseqs, sizes, contents = zip(*rows) if rows else ((), (), (), (), ())
            return MailboxSnapshot(
                mailbox(row), array("I", uids), array("B", flags), array("Q", modseqs),
                {uid: names.decode_keywords(text) for uid, text in kws}, array("I", sizes), array("Q", contents),
            )  # fmt: skip

        return await self._readers.run(run)

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        if self._fulltext.items and uses_fulltext(key):
            await self._fulltext.flush()  # through the index rather than reading those files
        sql, args = search_sql(mailbox_id, key)
        rows = await self._all(sql, tuple(args))
        return [r[0] for r in rows]

    async def sort(self, mailbox_id: int, keys: Sequence[SortKey], key: SearchKey) -> list[int]:
        if self._fulltext.items and uses_fulltext(key):
            await self._fulltext.flush()
        sql, args = search_sql(mailbox_id, key, keys)
        rows = await self._all(sql, tuple(args))
        return [r[0] for r in rows]

    async def sort_values(
        self, mailbox_id: int, keys: Sequence[SortKey], since_uid: int = 1
    ) -> list[tuple[int | str, ...]] | None:
        sql, args = sort_values_sql(mailbox_id, keys, since_uid)
        rows: list[tuple[int | str, ...]] = await self._all(sql, tuple(args))
        return rows

    async def thread_rows(self, mailbox_id: int, since_uid: int = 1) -> list[tuple[int, str, int]]:
        # contents.thread_id and messages.sort_date are kept at delivery (schema 7).
        rows = await self._all(
            "SELECT m.uid, COALESCE(c.thread_id, 'TC' || c.id), m.sort_date FROM messages m"
            " JOIN contents c ON c.id = m.content_id WHERE m.mailbox_id = ? AND m.uid >= ?",
            (mailbox_id, since_uid),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def claim_recent(self, mailbox_id: int, upto_uid: int | None = None) -> int:
        def op(tx: db.Tx) -> int:
            row = tx.one("SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?", (mailbox_id,))
            if row is None:
                raise NotFound("no such mailbox")
            first, uidnext = int(row[0]), int(row[1])
            upto = uidnext if upto_uid is None else min(upto_uid, uidnext)
            if upto > first:
                tx.run("UPDATE mailboxes SET recent_uid = ? WHERE id = ?", (upto, mailbox_id))
            return first

        # Most SELECTs claim nothing new: answered by a reader, without queueing behind the
        # writer's commits. A claim is not data a client was promised (RFC 3501 §2.3.2:
        # \Recent is advisory), so it does not wait for the disk: a crash may show messages
        # as \Recent once more, never lose or corrupt one.
        row = await self._one("SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?", (mailbox_id,))
        if row is None:
            raise NotFound("no such mailbox")
        first, uidnext = int(row[0]), int(row[1])
        if (uidnext if upto_uid is None else min(upto_uid, uidnext)) <= first:
            return first
        result: int = await self._writer.submit(op, durable=False)
        return result

    async def usage(self, user_id: int) -> Usage:
        row = await self._one(
            "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(messages), 0) FROM mailboxes WHERE user_id = ?", (user_id,)
        )
        return Usage(int(row[0]), int(row[1]))

    async def stats(self) -> StoreStats:
        def run(c: sqlite3.Connection) -> StoreStats:
            users = c.execute("SELECT COUNT(*) FROM users").fetchone()[0]
            boxes, msgs, size = c.execute(
                "SELECT COUNT(*), COALESCE(SUM(messages), 0), COALESCE(SUM(size), 0) FROM mailboxes"
            ).fetchone()
            blobs = c.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM contents").fetchone()
            return StoreStats(users, boxes, msgs, size, {"files": blobs[0], "file_bytes": blobs[1]})

        return await self._readers.run(run)

    # --- annotations (RFC 5464) ---------------------------------------------------------------------
    async def get_metadata(self, user_id: int, mailbox_id: int | None) -> dict[str, bytes]:
        return await self._readers.run(lambda c: meta_ops.get(c, user_id, mailbox_id))

    async def set_metadata(
        self, user_id: int, mailbox_id: int | None, entries: dict[str, bytes | None], max_entries: int = 0
    ) -> None:
        entries = dict(entries)
        await self._write(lambda tx: meta_ops.set_entries(tx, user_id, mailbox_id, entries, max_entries))

    # --- outbound queue --------------------------------------------------------------------------
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
        blob = await asyncio.to_thread(self.blobs.put, data, False)
        result: int = await self._write(
            lambda tx: queue_ops.enqueue(
                tx, blob, len(data), mail_from, rcpts, envid, ret, smtputf8, body_8bit, auth_user, source
            ),
            orphan_blobs=[blob],
        )
        return result

    async def list_queue(self) -> list[QueuedMessage]:
        def run(c: sqlite3.Connection) -> list[QueuedMessage]:
            msgs = c.execute(f"SELECT {queue_ops.QUEUE_COLS} FROM queue ORDER BY id").fetchall()
            rcpts = c.execute(f"SELECT {queue_ops.RECIPIENT_COLS} FROM queue_recipients ORDER BY id").fetchall()
            return queue_ops.rows_to_messages(msgs, rcpts)

        return await self._readers.run(run)

    async def delete_queued(self, queue_id: int) -> None:
        await self._write(lambda tx: queue_ops.delete(tx, queue_id))

    async def due_queue(self, now: datetime, limit: int = 1000) -> list[QueuedMessage]:
        t = int(now.timestamp())

        def run(c: sqlite3.Connection) -> list[QueuedMessage]:
            ids = [
                r[0]
                for r in c.execute(
                    "SELECT DISTINCT queue_id FROM queue_recipients WHERE state IN ('queued', 'deferred')"
                    " AND next_attempt <= ? ORDER BY queue_id LIMIT ?",
                    (t, limit),
                )
            ]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            msgs = c.execute(f"SELECT {queue_ops.QUEUE_COLS} FROM queue WHERE id IN ({marks}) ORDER BY id", ids)
            rcpts = c.execute(
                f"SELECT {queue_ops.RECIPIENT_COLS} FROM queue_recipients WHERE queue_id IN ({marks}) ORDER BY id", ids
            )
            return queue_ops.rows_to_messages(msgs.fetchall(), rcpts.fetchall())

        return await self._readers.run(run)

    async def update_queue(self, updates: Sequence[RecipientUpdate]) -> list[int]:
        items = list(updates)
        removed: list[int] = await self._write(lambda tx: queue_ops.update(tx, items))
        return removed

    async def flush_queue(self) -> int:
        count: int = await self._write(queue_ops.flush)
        return count

    async def check(self) -> list[str]:
        from courriel.store.sqlite.check import check_invariants

        return await self._readers.run(lambda c: check_invariants(c, self.blobs))


    # --- Sieve scripts and vacation tracking --------------------------------------------------
    async def list_sieve_scripts(self, user_id: int) -> list[SieveScript]:
        return await self._readers.run(lambda c: sieve_ops.list_scripts(c, user_id))

    async def get_sieve_script(self, user_id: int, name: str | None) -> SieveScript | None:
        return await self._readers.run(lambda c: sieve_ops.get_script(c, user_id, name))

    async def delivery_sieve_scripts(self, user_id: int, system: str) -> tuple[SieveScript | None, SieveScript | None]:
        return await self._readers.run(lambda c: sieve_ops.delivery_scripts(c, user_id, system))

    async def put_sieve_script(
        self, user_id: int, name: str, content: str, max_scripts: int = 0, max_size: int = 0
    ) -> None:
        await self._write(lambda tx: sieve_ops.put_script(tx, user_id, name, content, max_scripts, max_size))

    async def set_active_sieve_script(self, user_id: int, name: str | None) -> None:
        await self._write(lambda tx: sieve_ops.set_active(tx, user_id, name))

    async def delete_sieve_script(self, user_id: int, name: str) -> None:
        await self._write(lambda tx: sieve_ops.delete_script(tx, user_id, name))

    async def rename_sieve_script(self, user_id: int, old: str, new: str) -> None:
        await self._write(lambda tx: sieve_ops.rename_script(tx, user_id, old, new))

    async def vacation_due(self, user_id: int, handle: str, sender: str, period: int) -> bool:
        now = int(time.time())
        due: bool = await self._write(
            lambda tx: sieve_ops.vacation_due(tx, user_id, handle, sender.lower(), now, period)
        )
        return due

    # --- account-wide views and change tracking (JMAP), bearer tokens ----------------------
    async def account_messages(self, user_id: int) -> list[AccountMessage]:
        return await self._readers.run(lambda c: accountsync.account_messages(c, user_id))

    async def account_messages_of(self, user_id: int, content_ids: Sequence[int]) -> list[AccountMessage]:
        return await self._readers.run(lambda c: accountsync.account_messages(c, user_id, content_ids))

    async def account_received(self, user_id: int, mailbox_id: int | None) -> list[tuple[int, float]]:
        return await self._readers.run(lambda c: accountsync.account_received(c, user_id, mailbox_id))

    async def received_page(
        self, user_id: int, mailbox_id: int, count: int, total: bool
    ) -> tuple[list[tuple[int, float]], int | None]:
        return await self._readers.run(lambda c: accountsync.received_page(c, user_id, mailbox_id, count, total))

    async def message_changes(self, user_id: int, since: int) -> tuple[list[CopyChange], bool]:
        return await self._readers.run(lambda c: accountsync.message_changes(c, user_id, since))

    async def mailbox_changes(self, user_id: int, since: int) -> list[MailboxChange]:
        return await self._readers.run(lambda c: accountsync.mailbox_changes(c, user_id, since))

    async def add_token(self, user_id: int, token_hash: bytes, label: str = "") -> AccessToken:
        token: AccessToken = await self._write(lambda tx: accountsync.add_token(tx, user_id, token_hash, label))
        return token

    async def list_tokens(self, user_id: int | None = None) -> list[AccessToken]:
        return await self._readers.run(lambda c: accountsync.list_tokens(c, user_id))

    async def delete_token(self, token_id: int) -> None:
        await self._write(lambda tx: accountsync.delete_token(tx, token_id))

    async def token_user(self, token_hash: bytes) -> User | None:
        user_id = await self._readers.run(lambda c: accountsync.token_user_id(c, token_hash))
        return None if user_id is None else await self.get_user_by_id(user_id)

    # --- message events (journeys) ----------------------------------------------------------
    async def add_message_events(self, events: Sequence[MessageEvent]) -> None:
        if events:
            batch = list(events)
            await self._writer.submit(lambda tx: event_ops.add(tx, batch), durable=False)

    async def message_events(self, user_id: int, content_id: int) -> list[MessageEvent]:
        return await self._readers.run(lambda c: event_ops.of(c, user_id, content_id))

    async def prune_message_events(self, before: float) -> int:
        n: int = await self._writer.submit(lambda tx: event_ops.prune(tx, before), durable=False)
        return n

    # --- webmail sessions -------------------------------------------------------------------
    async def add_web_session(
        self, user_id: int, token_hash: bytes, secret: str, created: float, expires: float,
        client_ip: str = "", user_agent: str = "",
    ) -> WebSession:  # fmt: skip
        made: WebSession = await self._write(
            lambda tx: web_ops.add(tx, user_id, token_hash, secret, created, expires, client_ip, user_agent)
        )
        return made

    async def web_session(self, token_hash: bytes) -> WebSession | None:
        return await self._readers.run(lambda c: web_ops.by_hash(c, token_hash))

    async def web_session_by_id(self, session_id: int) -> WebSession | None:
        return await self._readers.run(lambda c: web_ops.by_id(c, session_id))

    async def list_web_sessions(self, user_id: int) -> list[WebSession]:
        return await self._readers.run(lambda c: web_ops.of_user(c, user_id))

    async def touch_web_sessions(self, seen: Sequence[tuple[int, float]]) -> None:
        if seen:
            batch = list(seen)
            await self._writer.submit(lambda tx: web_ops.touch(tx, batch), durable=False)

    async def delete_web_session(self, session_id: int) -> None:
        await self._write(lambda tx: web_ops.delete(tx, session_id))

    async def delete_web_sessions(self, user_id: int) -> int:
        n: int = await self._write(lambda tx: web_ops.delete_user(tx, user_id))
        return n

    async def prune_web_sessions(self, idle_before: float, now: float) -> int:
        n: int = await self._writer.submit(lambda tx: web_ops.prune(tx, idle_before, now), durable=False)
        return n

    # --- JMAP EmailSubmission records ---------------------------------------------------------
    async def add_email_submission(self, record: EmailSubmissionRecord) -> int:
        n: int = await self._write(lambda tx: submission_ops.add(tx, record))
        return n

    async def email_submissions(self, user_id: int, tombstones: bool = False) -> list[EmailSubmissionRecord]:
        return await self._readers.run(lambda c: submission_ops.of(c, user_id, tombstones))

    async def update_email_submission(self, user_id: int, submission_id: str, delivery: dict[str, Any]) -> int:
        n: int = await self._write(lambda tx: submission_ops.update(tx, user_id, submission_id, delivery))
        return n

    async def destroy_email_submissions(self, user_id: int, ids: Sequence[str]) -> list[str]:
        done: list[str] = await self._write(lambda tx: submission_ops.destroy(tx, user_id, ids))
        return done


def _alias_address(address: str) -> str:
    address = address.strip()
    if address.startswith("@"):
        return "@" + names.normalize_domain(address[1:])
    return names.normalize_address(address)


def _chunked(c: sqlite3.Connection, base: str, mailbox_id: int, uids: list[int]) -> list[Any]:
    """Rows of ``base`` (its first column the UID) for ascending distinct ``uids``."""
    if not uids:
        return []
    lo, hi = uids[0], uids[-1]
    if hi - lo + 1 <= 2 * len(uids):  # dense (FETCH 1:1000, a sync tool's batch): one range
        rows = c.execute(
            f"{base} WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? ORDER BY m.uid", (mailbox_id, lo, hi)
        ).fetchall()
        if hi - lo + 1 == len(uids):
            return rows
        wanted = set(uids)
        return [r for r in rows if r[0] in wanted]
    rows = []
    for i in range(0, len(uids), 500):
        chunk = uids[i : i + 500]
        rows.extend(
            c.execute(
                f"{base} WHERE m.mailbox_id = ? AND m.uid IN ({','.join('?' * len(chunk))}) ORDER BY m.uid",
                (mailbox_id, *chunk),
            ).fetchall()
        )
    return rows
