"""PostgreSQL write paths that save round trips: a group-commit batch runs without
savepoints and, when one operation fails, again with them (the others commit once, their
changes published once); STORE and EXPUNGE in one statement keep the counters right;
claim_recent answers "nothing new" without a transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from courriel.store.api import INBOX, Flag, FlagMode, NewMessage, NotFound
from courriel.store.changes import Change, FlagsChanged, MessagesExpunged
from tests.conftest import BACKENDS, message

pytestmark = pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL not in COURRIEL_TEST_BACKENDS")


@pytest.fixture
def dsn() -> Iterator[str]:
    from tests.pg import cluster

    pg = cluster()
    value = pg.fresh_dsn()
    yield value
    pg.drop(value)


def test_failing_operation_in_a_batch(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from courriel.store.postgres.store import PostgresStore

    async def main() -> None:
        store = await PostgresStore.open(dsn)
        try:
            await store.add_domain("example.test")
            user = await store.add_user("u@example.test", "pw")
            inbox = await store.get_mailbox(user.id, INBOX)
            assert inbox is not None
            added = await store.append_many(inbox.id, [NewMessage(message(f"m{i}")) for i in range(6)])
            uids = [a.uid for a in added]
            seen: list[Change] = []
            store.changes.subscribe(user.id, seen.extend)
            tries: list[tuple[int, bool]] = []
            run_batch = store.db._run_batch

            async def spy(batch: list[Any], savepoints: bool) -> bool:
                tries.append((len(batch), savepoints))
                return await run_batch(batch, savepoints)

            monkeypatch.setattr(store.db, "_run_batch", spy)
            # Queued in one loop turn: one batch; the missing mailbox fails inside it.
            results = await asyncio.gather(
                *(store.store_flags(inbox.id, [uid], FlagMode.ADD, Flag.SEEN) for uid in uids[:4]),
                store.store_flags(inbox.id + 1000, [1], FlagMode.ADD, Flag.SEEN),
                store.store_flags(inbox.id, uids[4:], FlagMode.ADD, Flag.DELETED),
                return_exceptions=True,
            )
            assert tries == [(6, False), (6, True)]  # rolled back, then with savepoints
            assert isinstance(results[4], NotFound)
            for uid, result in zip(uids[:4], results[:4]):
                assert not isinstance(result, BaseException)
                assert [(i.uid, i.flags) for i in result.changed] == [(uid, Flag.SEEN)]
            last = results[5]
            assert not isinstance(last, BaseException)
            assert [i.uid for i in last.changed] == uids[4:]
            flag_changes = [c for c in seen if isinstance(c, FlagsChanged)]
            assert sorted(c.uid for c in flag_changes) == sorted(uids)  # each exactly once
            modseqs = [c.modseq for c in flag_changes]
            assert len(set(modseqs[:4])) == 4
            box = await store.get_mailbox_by_id(inbox.id)
            assert box is not None and (box.unseen, box.deleted) == (2, 2)
            assert await store.check() == []

            # EXPUNGE in one statement: rows, tombstones, counters, contents released.
            gone = await store.expunge(inbox.id)
            assert gone == uids[4:]
            assert await store.expunge(inbox.id) == []
            expunged = [c for c in seen if isinstance(c, MessagesExpunged)]
            assert len(expunged) == 1 and list(expunged[0].uids) == uids[4:]
            box = await store.get_mailbox_by_id(inbox.id)
            assert box is not None and (box.messages, box.unseen, box.deleted) == (4, 0, 0)
            assert box.highestmodseq == expunged[0].modseq
            _, vanished = await store.changed_since(inbox.id, last.changed[0].modseq)
            assert vanished == uids[4:]
            assert await store.check() == []
            # -FLAGS, and a +FLAGS that changes nothing (no MODSEQ taken).
            before = len(seen)
            unchanged = await store.store_flags(inbox.id, uids[:2], FlagMode.ADD, Flag.SEEN)
            assert unchanged.changed == [] and len(seen) == before
            removed = await store.store_flags(inbox.id, uids[:2], FlagMode.REMOVE, Flag.SEEN)
            assert [i.flags for i in removed.changed] == [Flag(0), Flag(0)]
            box = await store.get_mailbox_by_id(inbox.id)
            assert box is not None and box.unseen == 2 and box.highestmodseq == removed.changed[0].modseq
            assert await store.check() == []
        finally:
            await store.close()

    asyncio.run(main())


def test_claim_recent_nothing_new(dsn: str) -> None:
    from courriel.store.postgres.store import PostgresStore

    async def main() -> None:
        store = await PostgresStore.open(dsn)
        try:
            await store.add_domain("example.test")
            user = await store.add_user("u@example.test", "pw")
            inbox = await store.get_mailbox(user.id, INBOX)
            assert inbox is not None
            await store.append_many(inbox.id, [NewMessage(message(f"m{i}")) for i in range(3)])
            assert await store.claim_recent(inbox.id) == 1  # UIDs 1-3 recent for this caller
            assert await store.claim_recent(inbox.id) == 4  # nothing left for the next one
            assert await store.claim_recent(inbox.id, upto_uid=2) == 4
            await store.append_many(inbox.id, [NewMessage(message("m3"))])
            assert await store.claim_recent(inbox.id, upto_uid=4) == 4  # bound below: none
            assert await store.claim_recent(inbox.id, upto_uid=5) == 4
            assert await store.claim_recent(inbox.id) == 5
            with pytest.raises(NotFound):
                await store.claim_recent(inbox.id + 1000)
        finally:
            await store.close()

    asyncio.run(main())
