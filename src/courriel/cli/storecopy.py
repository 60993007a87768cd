"""``courriel store copy --to postgres://...``: move a deployment from its SQLite store to
PostgreSQL, with progress, then verify.

Everything is copied with its identity: ids (so mailbox, content and user ids stay valid
in clients' caches and JMAP ids), UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ, each message's UID,
MODSEQ, flags, keywords and dates, tombstones, password hashes and SCRAM keys, aliases,
subscriptions, METADATA, Sieve scripts, vacation records, tokens, JMAP submission records and
the outbound queue.
Message bytes go into the database (``blob_data``), or into ``--blob-dir`` as files. The
full-text rows come from the SQLite index, or from the message when it was not indexed.

The whole copy is one PostgreSQL transaction (all or nothing) into a database that must
hold no users or domains yet; the SQLite side is read in one read transaction (stop the
server first: mail arriving during the copy would be missing). At the end the row counts
of every table are compared, and the PostgreSQL store's invariant check runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from courriel.cli.main import CommandError, data_dir
from courriel.cli.migrate import _redact
from courriel.config import load_config

#: Tables in dependency order; contents_text and blob_data are derived (see below).
TABLES = (
    "domains", "users", "aliases", "mailboxes", "mailbox_tombstones", "subscriptions", "contents",
    "messages", "expunged", "queue", "queue_recipients", "metadata", "sieve_scripts", "sieve_vacation",
    "access_tokens", "email_submissions",
)  # fmt: skip
SEQUENCES = {
    "domains": "id", "users": "id", "mailboxes": "id", "contents": "id", "queue": "id",
    "queue_recipients": "id", "access_tokens": "id",
}  # fmt: skip
BATCH = 500


def register(sto: Any) -> None:
    """Add ``copy`` to the ``courriel store`` subcommands."""
    p = sto.add_parser("copy", help="copy this SQLite store into a PostgreSQL database")
    p.add_argument("--to", required=True, metavar="DSN", help="the PostgreSQL database, postgres://...")
    p.add_argument("--blob-dir", metavar="DIR", help="write message files here (default: into the database)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_copy)


def cmd_copy(args: argparse.Namespace) -> int:
    cfg = load_config(data_dir(args))
    if cfg.store.backend != "sqlite":
        raise CommandError("store copy reads a SQLite store: this data directory's backend is " + cfg.store.backend)
    if not args.to.startswith(("postgres://", "postgresql://")):
        raise CommandError("--to: a PostgreSQL URL (postgres://...) is required")
    from courriel.store.sqlite import db as sqlite_db

    db_path = cfg.path(cfg.store.path)
    if not db_path.exists():
        raise CommandError(f"no SQLite store at {db_path}")
    conn = sqlite_db.connect(db_path)
    sqlite_db.migrate(conn)  # the newest schema, as the server would
    conn.close()
    blob_dir = Path(args.blob_dir).resolve() if args.blob_dir else None
    copier = Copier(db_path, cfg.path(cfg.store.blobs), args.to, blob_dir, quiet=args.quiet)
    problems = copier.run()
    problems += asyncio.run(_check(args.to, blob_dir))
    if problems:
        for p in problems:
            print(f"problem: {p}")
        raise CommandError(f"copy finished with {len(problems)} problem(s)")
    print(f"copied to {_redact(args.to)}; to use it, set in courriel.toml: [store] backend = \"postgres\","
          f" dsn = \"...\"{', blob_dir = ' + repr(str(blob_dir)) if blob_dir else ''}")  # fmt: skip
    return 0


async def _check(dsn: str, blob_dir: Path | None) -> list[str]:
    from courriel.store.postgres.store import PostgresStore

    store = await PostgresStore.open(dsn, blob_dir, listen=False)
    try:
        return [f"store check: {p}" for p in await store.check()]
    finally:
        await store.close()


class Copier:
    def __init__(self, db_path: Path, blob_root: Path, dsn: str, blob_dir: Path | None, quiet: bool = False) -> None:
        self.db_path = db_path
        self.blob_root = blob_root
        self.dsn = dsn
        self.blob_dir = blob_dir
        self.quiet = quiet
        self.problems: list[str] = []

    def run(self) -> list[str]:
        from courriel.store.postgres import schema

        schema.migrate_dsn(self.dsn)
        src = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        src.execute("BEGIN")  # one read snapshot of everything
        try:
            with psycopg.connect(self.dsn) as dst:
                busy = dst.execute("SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM domains)").fetchone()
                if busy and busy[0]:
                    raise CommandError("the PostgreSQL database already holds domains or users: use an empty one")
                counts = {t: int(src.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES}
                with self._progress() as progress:
                    for table in TABLES:
                        task = progress.add_task(table, total=counts[table] or 1)
                        self._copy_table(src, dst, table, lambda n, task=task: progress.advance(task, n))
                        if not counts[table]:
                            progress.advance(task, 1)
                    task = progress.add_task("message data", total=counts["contents"] or 1)
                    self._copy_contents_data(src, dst, lambda n: progress.advance(task, n))
                self._fix_sequences(src, dst)
                self._verify(src, dst, counts)
                dst.commit()
        finally:
            src.close()
        return self.problems

    def _progress(self) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        return Progress(
            TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            disable=self.quiet,
        )  # fmt: skip

    @staticmethod
    def _columns(src: sqlite3.Connection, dst: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
        """(name, PostgreSQL type) of the columns both sides have, in PostgreSQL's order."""
        have = {r[1] for r in src.execute(f"PRAGMA table_info({table})")}
        rows = dst.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [(name, kind) for name, kind in rows if name in have]

    def _copy_table(self, src: sqlite3.Connection, dst: psycopg.Connection[Any], table: str, advance: Any) -> None:
        cols = self._columns(src, dst, table)
        names = ", ".join(c for c, _ in cols)
        kinds = [k for _, k in cols]
        with dst.cursor().copy(f"COPY {table} ({names}) FROM STDIN".encode()) as copy:
            for batch in _batches(src.execute(f"SELECT {names} FROM {table}")):
                for row in batch:
                    copy.write_row([_value(v, k) for v, k in zip(row, kinds)])
                advance(len(batch))

    def _copy_contents_data(self, src: sqlite3.Connection, dst: psycopg.Connection[Any], advance: Any) -> None:
        from courriel.store.blobs import BlobStore
        from courriel.store.content import index_texts

        files = BlobStore(self.blob_dir) if self.blob_dir is not None else None
        source = BlobStore(self.blob_root, use_syncfs=False)
        cur = src.execute(
            "SELECT c.id, c.blob, c.indexed, f.head, f.body FROM contents c"
            " LEFT JOIN contents_fts f ON f.rowid = c.id ORDER BY c.id"
        )
        for batch in _batches(cur):
            texts: list[tuple[int, str, str]] = []
            blobs: list[tuple[str, bytes]] = []
            for content_id, blob, indexed, head, body in batch:
                try:
                    data = source.get(blob)
                except OSError as exc:
                    self.problems.append(f"content {content_id}: message file {blob}: {exc.strerror or exc}")
                    data = None
                if not indexed or head is None:
                    head, body = index_texts(data) if data is not None else ("", "")
                texts.append((content_id, _clean(head.casefold()), _clean(body.casefold())))
                if data is not None:
                    if files is None:
                        blobs.append((blob, data))
                    else:
                        target = files.path(blob)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(source.path(blob), target)
                        files.sync([blob])
            with dst.cursor().copy(b"COPY contents_text (content_id, head, body) FROM STDIN") as copy:
                for text_row in texts:
                    copy.write_row(text_row)
            if blobs:
                with dst.cursor().copy(b"COPY blob_data (blob, data) FROM STDIN") as copy:
                    for blob_row in blobs:
                        copy.write_row(blob_row)
            advance(len(batch))
        for (blob,) in src.execute("SELECT blob FROM queue").fetchall():  # queued messages' bytes
            try:
                data = source.get(blob)
            except OSError as exc:
                self.problems.append(f"queued message file {blob}: {exc.strerror or exc}")
                continue
            if files is None:
                dst.execute("INSERT INTO blob_data (blob, data) VALUES (%s, %s)", (blob, data))
            else:
                files.path(blob).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source.path(blob), files.path(blob))
                files.sync([blob])

    @staticmethod
    def _fix_sequences(src: sqlite3.Connection, dst: psycopg.Connection[Any]) -> None:
        for table, col in SEQUENCES.items():
            dst.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'),"
                f" GREATEST((SELECT MAX({col}) FROM {table}), 1))".encode()
            )
        row = src.execute("SELECT value FROM meta WHERE key = 'uidvalidity'").fetchone()
        top = max(int(row[0]) if row else 0, int(src.execute("SELECT COALESCE(MAX(uidvalidity), 0) FROM mailboxes").fetchone()[0]))
        if top:
            dst.execute("SELECT setval('uidvalidity_seq', GREATEST(%s, (SELECT last_value FROM uidvalidity_seq)))", (top,))

    def _verify(self, src: sqlite3.Connection, dst: psycopg.Connection[Any], counts: dict[str, int]) -> None:
        for table in TABLES:
            got = dst.execute(f"SELECT COUNT(*) FROM {table}".encode()).fetchone()
            if got is None or int(got[0]) != counts[table]:
                self.problems.append(f"{table}: {counts[table]} rows in SQLite, {got[0] if got else 0} copied")
        texts = dst.execute("SELECT COUNT(*) FROM contents_text").fetchone()
        if texts is None or int(texts[0]) != counts["contents"]:
            self.problems.append("contents_text: not one row per content")
        if not self.quiet:
            for table in TABLES:
                print(f"{table:<20} {counts[table]:>10} rows")


def _batches(cur: sqlite3.Cursor) -> Iterator[list[Any]]:
    while batch := cur.fetchmany(BATCH):
        yield batch


def _clean(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _value(v: Any, kind: str) -> Any:
    if v is None:
        return None
    if kind == "boolean":
        return bool(v)
    if isinstance(v, str):
        return _clean(v)
    return v
