"""`courriel store copy --to postgres://...`, `courriel migrate` and `courriel init --store`,
run as commands: a SQLite deployment with every kind of data moves to PostgreSQL intact."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.cli.init import init_dir
from courriel.cli.main import CommandError
from courriel.store.api import (
    INBOX,
    BodyContains,
    EmailSubmissionRecord,
    Flag,
    FlagMode,
    HeaderContains,
    QueueRecipient,
    Store,
)
from courriel.store.postgres.store import PostgresStore
from courriel.store.sqlite.store import SQLiteStore
from tests.conftest import BACKENDS, message
from tests.harness import courriel_cmd

pytestmark = pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL not in COURRIEL_TEST_BACKENDS")


ENV = {k: v for k, v in os.environ.items() if not k.startswith("COURRIEL_")}


def env(**extra: str) -> dict[str, str]:
    return {**ENV, **extra}


@pytest.fixture
def empty_dsn() -> Iterator[str]:
    """A database without the schema (store copy and init create it)."""
    from tests.pg import cluster

    pg = cluster()
    name = f"e_{uuid.uuid4().hex}"
    pg.admin(f"CREATE DATABASE {name}")
    yield pg.dsn(name)
    pg.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _populate(data: Path) -> None:
    s = await SQLiteStore.open(data / "courriel.db", data / "blobs")
    try:
        await s.add_user("alice@example.test", "alice-pw", quota_bytes=10**7)
        bob = await s.add_user("bob@example.test", "bob-pw")
        await s.set_apop_secret("bob@example.test", "apop")
        await s.add_alias("team@example.test", ["alice@example.test", "x@remote.test"])
        await s.add_alias("@example.test", ["bob@example.test"])
        alice = await s.get_user("alice@example.test")
        assert alice is not None
        inbox = await s.get_mailbox(alice.id, INBOX)
        assert inbox is not None
        work = await s.create_mailbox(alice.id, "Work/2026")
        for i in range(30):
            await s.append(inbox.id, message(f"copy {i}", f"needle{i} body\r\n"), Flag.SEEN if i % 3 else Flag(0),
                           frozenset({"$Label1"}) if i % 5 == 0 else frozenset(),
                           datetime(2026, 1, 1 + i % 28, tzinfo=UTC))  # fmt: skip
        await s.copy(inbox.id, [1, 2, 3], work.id)
        await s.store_flags(inbox.id, [4, 5], FlagMode.ADD, Flag.DELETED)
        await s.expunge(inbox.id)  # tombstones
        await s.move(inbox.id, [6], work.id)
        await s.delete_mailbox(alice.id, "Junk")  # a mailbox tombstone
        await s.subscribe(alice.id, "Work/2026")
        await s.set_metadata(alice.id, inbox.id, {"/private/comment": b"hello"})
        await s.set_metadata(alice.id, None, {"/private/vendor/x": b"\x00\x01"})
        await s.put_sieve_script(bob.id, "main", 'keep;\r\n')
        await s.set_active_sieve_script(bob.id, "main")
        await s.vacation_due(bob.id, "h", "someone@remote.test", 86400)
        await s.add_token(alice.id, b"\x01" * 32, "phone")
        for sid in ("S1", "S2"):  # JMAP submission records, one destroyed (a tombstone)
            await s.add_email_submission(EmailSubmissionRecord(
                sid, alice.id, "I1", "M1", "T1", {"mailFrom": {"email": "alice@example.test"}}, 1.5, None,
                {"x@remote.test": {"delivered": "queued"}}))  # fmt: skip
        await s.destroy_email_submissions(alice.id, ["S2"])
        await s.enqueue(message("outbound"), "alice@example.test",
                        [QueueRecipient("x@remote.test", "SUCCESS,FAILURE", "rfc822;x@remote.test")], envid="E1")  # fmt: skip
        await s.claim_recent(inbox.id)
    finally:
        await s.close()


async def _state(s: Store) -> dict[str, object]:
    out: dict[str, object] = {
        "domains": [(d.id, d.name) for d in await s.list_domains()],
        "users": await s.list_users(),
        "aliases": await s.list_aliases(),
        "tokens": [(t.id, t.user_id, t.label) for t in await s.list_tokens()],
        "queue": [(q.id, q.mail_from, q.size, q.envid, [(r.id, r.address, r.notify, r.orcpt, r.state)
                   for r in q.recipients], await s.read_message(q.blob)) for q in await s.list_queue()],
    }  # fmt: skip
    for u in await s.list_users():
        cred = await s.get_credentials(u.address)
        out[f"cred {u.address}"] = cred
        boxes = await s.list_mailboxes(u.id)
        out[f"boxes {u.address}"] = boxes
        out[f"subs {u.address}"] = await s.list_subscriptions(u.id)
        out[f"meta {u.address}"] = await s.get_metadata(u.id, None)
        out[f"sieve {u.address}"] = await s.list_sieve_scripts(u.id)
        out[f"submissions {u.address}"] = await s.email_submissions(u.id, tombstones=True)
        for b in boxes:
            infos = await s.list_messages(b.id)
            out[f"msgs {b.id}"] = infos
            out[f"gone {b.id}"] = await s.changed_since(b.id, 0)
            out[f"meta {b.id}"] = await s.get_metadata(u.id, b.id)
            records = await s.get_records(b.id, [i.uid for i in infos])
            out[f"bytes {b.id}"] = [await s.read_message(r.blob) for r in records]
            out[f"records {b.id}"] = [(r.envelope_json, r.body_json, r.subject, r.savedate) for r in records]
    return out


def test_store_copy_moves_everything(tmp_path: Path, empty_dsn: str) -> None:
    data = tmp_path / "data"
    courriel_cmd("init", str(data), "--domain", "example.test", env=env())
    asyncio.run(_populate(data))
    done = courriel_cmd("-d", str(data), "store", "copy", "--to", empty_dsn, env=env(COLUMNS="100"))
    assert "copied to" in done.stdout and "messages" in done.stdout

    async def compare() -> None:
        src = await SQLiteStore.open(data / "courriel.db", data / "blobs")
        dst = await PostgresStore.open(empty_dsn)
        try:
            before, after = await _state(src), await _state(dst)
            assert before.keys() == after.keys()
            for key in before:
                assert after[key] == before[key], key
            assert await dst.check() == []
            alice = await dst.get_user("alice@example.test")
            assert alice is not None
            inbox = await dst.get_mailbox(alice.id, INBOX)
            assert inbox is not None
            assert await dst.search(inbox.id, BodyContains("needle17")) == [18]  # full text copied
            assert await dst.search(inbox.id, HeaderContains("subject", "copy 2")) == [3, *range(21, 31)]
            # it goes on from where SQLite stopped: next UID, new UIDVALIDITY above the old ones
            a = await dst.append(inbox.id, message("after the copy"))
            assert a.uid == inbox.uidnext
            fresh = await dst.create_mailbox(alice.id, "New")
            assert fresh.uidvalidity > max(b.uidvalidity for b in await src.list_mailboxes(alice.id))
        finally:
            await src.close()
            await dst.close()

    asyncio.run(compare())
    # a second copy into a database that is not empty any more is refused
    with pytest.raises(RuntimeError, match="already holds"):
        courriel_cmd("-d", str(data), "store", "copy", "--to", empty_dsn, "--quiet", env=env())


def test_init_with_postgres_and_migrate(tmp_path: Path, empty_dsn: str) -> None:
    data = tmp_path / "pg"
    courriel_cmd("init", str(data), "--domain", "example.test", "--store", empty_dsn, env=env())
    config = (data / "courriel.toml").read_text()
    assert 'backend = "postgres"' in config and empty_dsn in config
    assert not (data / "courriel.db").exists()
    courriel_cmd("-d", str(data), "user", "add", "carol@example.test", "--password-stdin", stdin="pw\n", env=env())
    out = courriel_cmd("-d", str(data), "migrate", env=env()).stdout
    assert "postgres store" in out and "nothing to do" in out

    async def carol() -> None:
        store = await PostgresStore.open(empty_dsn)
        try:
            assert await store.get_user("carol@example.test") is not None
        finally:
            await store.close()

    asyncio.run(carol())
    # SQLite: migrate says what it did
    sq = tmp_path / "sq"
    courriel_cmd("init", str(sq), env=env())
    out = courriel_cmd("-d", str(sq), "migrate", env=env()).stdout
    assert "sqlite store" in out and "nothing to do" in out
    with pytest.raises(CommandError, match="PostgreSQL URL"):
        init_dir(tmp_path / "bad", "example.test", store="mysql://x")


def test_migrate_applies_pending(empty_dsn: str, tmp_path: Path) -> None:
    data = tmp_path / "d"
    courriel_cmd("init", str(data), env=env())
    out = courriel_cmd("-d", str(data), "migrate", env=env(COURRIEL_STORE_BACKEND="postgres",
                                                           COURRIEL_STORE_DSN=empty_dsn)).stdout  # fmt: skip
    assert "applied migration(s) 1" in out
