"""The store API, operation by operation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from courriel.auth import passwords
from courriel.store.api import (
    INBOX,
    SPECIAL_USE,
    All,
    AlreadyExists,
    And,
    AppendTarget,
    BodyContains,
    ContentIs,
    DateCompare,
    DateField,
    Flag,
    FlagMode,
    HasFlag,
    HasKeyword,
    HeaderContains,
    InThread,
    InvalidName,
    Not,
    NotFound,
    Or,
    QuotaExceeded,
    SizeCompare,
    SortKey,
    StoreError,
    UidIn,
)
from courriel.store.changes import MessageAdded, MessagesExpunged
from courriel.store.content import thread_id, thread_key
from tests.conftest import StoreRunner, message


def setup_users(r: StoreRunner) -> tuple[int, int]:
    r.run(r.store.add_domain("example.test"))
    alice = r.run(r.store.add_user("alice@example.test", "secret-a"))
    bob = r.run(r.store.add_user("bob@Example.TEST", "secret-b"))
    return alice.id, bob.id


def test_users_and_credentials(runner: StoreRunner) -> None:
    s = runner.store
    setup_users(runner)
    assert [d.name for d in runner.run(s.list_domains())] == ["example.test"]
    assert [u.address for u in runner.run(s.list_users())] == ["alice@example.test", "bob@example.test"]
    with pytest.raises(AlreadyExists):
        runner.run(s.add_user("ALICE@example.test", "x"))
    with pytest.raises(NotFound):
        runner.run(s.add_user("carol@elsewhere.test", "x"))
    cred = runner.run(s.get_credentials("alice@EXAMPLE.test"))
    assert cred is not None and cred.password_hash is not None
    assert cred.password_hash.startswith("$argon2id$")
    assert passwords.verify(cred.password_hash, "secret-a")
    assert not passwords.verify(cred.password_hash, "secret-b")
    # SCRAM-SHA-256 keys derived from the password (RFC 5802 §3)
    assert cred.scram_salt and cred.scram_iterations >= 4096
    assert (cred.scram_stored_key, cred.scram_server_key) == passwords.scram_keys(
        "secret-a", cred.scram_salt, cred.scram_iterations
    )
    assert cred.apop_secret is None
    runner.run(s.set_apop_secret("alice@example.test", "apop-shared"))
    runner.run(s.set_password("alice@example.test", "new-password"))
    cred2 = runner.run(s.get_credentials("alice@example.test"))
    assert cred2 is not None and cred2.password_hash is not None
    assert cred2.apop_secret == "apop-shared"
    assert passwords.verify(cred2.password_hash, "new-password")
    assert cred2.scram_salt != cred.scram_salt


def test_new_user_has_special_use_mailboxes(runner: StoreRunner) -> None:
    alice, _ = setup_users(runner)
    boxes = {m.name: m for m in runner.run(runner.store.list_mailboxes(alice))}
    assert set(boxes) == {INBOX, *SPECIAL_USE}
    for name, attr in SPECIAL_USE.items():
        assert boxes[name].special_use == attr
    assert set(runner.run(runner.store.list_subscriptions(alice))) == set(boxes)
    assert len({m.uidvalidity for m in boxes.values()}) == len(boxes)


def test_aliases(runner: StoreRunner) -> None:
    s = runner.store
    setup_users(runner)
    runner.run(s.add_alias("postmaster@example.test", ["alice@example.test"]))
    runner.run(s.add_alias("team@example.test", ["alice@example.test", "bob@example.test", "x@remote.test"]))
    runner.run(s.add_alias("@example.test", ["alice@example.test"]))
    alias = runner.run(s.get_alias("TEAM@example.test"))
    assert alias is not None
    assert alias.targets == ("alice@example.test", "bob@example.test", "x@remote.test")
    assert runner.run(s.get_alias("@EXAMPLE.test")) is not None
    runner.run(s.delete_alias("team@example.test", ["x@remote.test"]))
    alias = runner.run(s.get_alias("team@example.test"))
    assert alias is not None and "x@remote.test" not in alias.targets
    runner.run(s.delete_alias("team@example.test"))
    assert runner.run(s.get_alias("team@example.test")) is None
    with pytest.raises(NotFound):
        runner.run(s.add_alias("a@unknown.test", ["alice@example.test"]))
    assert [a.address for a in runner.run(s.list_aliases())] == ["@example.test", "postmaster@example.test"]


def test_append_fetch_and_durable_bytes(runner: StoreRunner) -> None:
    s = runner.store
    alice, _ = setup_users(runner)
    inbox = runner.run(s.get_mailbox(alice, "inbox"))
    assert inbox is not None and inbox.name == INBOX
    data = message("first", "Body with café\r\n".encode("latin-1").decode("latin-1"))
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    a = runner.run(s.append(inbox.id, data, Flag.SEEN, frozenset({"$Label1"}), when, "bob@example.test"))
    assert a.uid == 1 and a.uidvalidity == inbox.uidvalidity
    (rec,) = runner.run(s.get_records(inbox.id, [1]))
    assert rec.info.internal_date == when and rec.info.flags == Flag.SEEN
    assert rec.info.keywords == {"$Label1"} and rec.mail_from == "bob@example.test"
    assert rec.subject == "first" and rec.info.size == len(data)
    assert '"first"' in rec.envelope_json
    assert runner.run(s.read_message(rec.blob)) == data
    box = runner.run(s.get_mailbox_by_id(inbox.id))
    assert box is not None and (box.messages, box.unseen, box.size, box.uidnext) == (1, 0, len(data), 2)


def test_deliver_to_several_users_stores_bytes_once(runner: StoreRunner) -> None:
    s = runner.store
    alice, bob = setup_users(runner)
    ia = runner.run(s.get_mailbox(alice, INBOX))
    ib = runner.run(s.get_mailbox(bob, INBOX))
    assert ia and ib
    res = runner.run(s.deliver(message(), [AppendTarget(ia.id), AppendTarget(ib.id)]))
    assert [r.uid for r in res] == [1, 1]
    assert res[0].content_id == res[1].content_id
    stats = runner.run(s.stats())
    assert stats.messages == 2 and stats.extra["files"] == 1
    assert runner.run(s.check()) == []


def test_copy_move_expunge_and_blob_lifetime(runner: StoreRunner) -> None:
    s = runner.store
    alice, _ = setup_users(runner)
    inbox = runner.run(s.get_mailbox(alice, INBOX))
    arch = runner.run(s.get_mailbox(alice, "Archive"))
    assert inbox and arch
    for i in range(5):
        runner.run(s.append(inbox.id, message(f"m{i}")))
    pairs = runner.run(s.copy(inbox.id, [2, 4, 99], arch.id))
    assert pairs == [(2, 1), (4, 2)]
    pairs = runner.run(s.move(inbox.id, [1, 2], arch.id))
    assert pairs == [(1, 3), (2, 4)]
    assert [m.uid for m in runner.run(s.list_messages(inbox.id))] == [3, 4, 5]
    # flag and expunge in the archive; the blob of a message still in the inbox stays
    runner.run(s.store_flags(arch.id, [1, 2, 3, 4], FlagMode.ADD, Flag.DELETED))
    assert runner.run(s.expunge(arch.id, [1, 3])) == [1, 3]
    assert runner.run(s.expunge(arch.id)) == [2, 4]
    assert runner.run(s.list_messages(arch.id)) == []
    assert runner.run(s.check()) == []
    stats = runner.run(s.stats())
    assert stats.extra["files"] == 3  # m1 and m2 are gone for good; m3..m5 remain
    _, gone = runner.run(s.changed_since(arch.id, 0))
    assert gone == [1, 2, 3, 4]
    # UIDs are never reused
    a = runner.run(s.append(arch.id, message("again")))
    assert a.uid == 5


def test_store_flags_modes_and_unchangedsince(runner: StoreRunner) -> None:
    s = runner.store
    alice, _ = setup_users(runner)
    inbox = runner.run(s.get_mailbox(alice, INBOX))
    assert inbox
    for i in range(3):
        runner.run(s.append(inbox.id, message(f"m{i}")))
    r = runner.run(s.store_flags(inbox.id, [1, 2], FlagMode.ADD, Flag.SEEN | Flag.FLAGGED, frozenset({"Work"})))
    assert [m.uid for m in r.changed] == [1, 2]
    m1 = r.changed[0].modseq
    r = runner.run(s.store_flags(inbox.id, [1], FlagMode.ADD, Flag.SEEN))
    assert r.changed == []  # no change, no new MODSEQ
    r = runner.run(s.store_flags(inbox.id, [1], FlagMode.REMOVE, Flag.FLAGGED, frozenset({"work"} & set())))
    assert r.changed[0].flags == Flag.SEEN and r.changed[0].modseq > m1
    r = runner.run(s.store_flags(inbox.id, [1, 2, 3], FlagMode.REPLACE, Flag.DRAFT, frozenset(), unchanged_since=m1))
    assert r.modified == [1]  # RFC 7162: changed after m1
    assert [m.uid for m in r.changed] == [2, 3]
    box = runner.run(s.get_mailbox_by_id(inbox.id))
    assert box is not None and box.unseen == 2
    with pytest.raises(InvalidName):
        runner.run(s.store_flags(inbox.id, [1], FlagMode.ADD, Flag(0), frozenset({"bad keyword"})))
    assert runner.run(s.check()) == []


def test_mailbox_hierarchy(runner: StoreRunner) -> None:
    s = runner.store
    alice, _ = setup_users(runner)
    runner.run(s.create_mailbox(alice, "Projects/2026/Q4"))
    names = [m.name for m in runner.run(s.list_mailboxes(alice))]
    assert {"Projects", "Projects/2026", "Projects/2026/Q4"} <= set(names)
    with pytest.raises(AlreadyExists):
        runner.run(s.create_mailbox(alice, "Projects"))
    for bad in ["", "a//b", "/a", "a/", "a*b", "x\x01"]:
        with pytest.raises(InvalidName):
            runner.run(s.create_mailbox(alice, bad))
    old = runner.run(s.get_mailbox(alice, "Projects/2026"))
    assert old
    runner.run(s.rename_mailbox(alice, "Projects", "Work/Projects"))
    moved = runner.run(s.get_mailbox(alice, "Work/Projects/2026"))
    assert moved is not None and moved.uidvalidity == old.uidvalidity
    assert runner.run(s.get_mailbox(alice, "Projects")) is None
    # deleting a parent leaves a \Noselect placeholder (RFC 9051 §6.3.5)
    runner.run(s.delete_mailbox(alice, "Work/Projects"))
    ph = runner.run(s.get_mailbox(alice, "Work/Projects"))
    assert ph is not None and ph.noselect
    with pytest.raises(StoreError):
        runner.run(s.delete_mailbox(alice, "Work/Projects"))
    with pytest.raises(StoreError):
        runner.run(s.delete_mailbox(alice, "INBOX"))
    runner.run(s.delete_mailbox(alice, "Work/Projects/2026/Q4"))
    runner.run(s.delete_mailbox(alice, "Work/Projects/2026"))
    runner.run(s.delete_mailbox(alice, "Work/Projects"))
    assert runner.run(s.get_mailbox(alice, "Work/Projects")) is None
    # a recreated name gets a new UIDVALIDITY
    again = runner.run(s.create_mailbox(alice, "Work/Projects/2026"))
    assert again.uidvalidity > old.uidvalidity


def test_rename_inbox_moves_messages(runner: StoreRunner) -> None:
    s = runner.store
    alice, _ = setup_users(runner)
    inbox = runner.run(s.get_mailbox(alice, INBOX))
    assert inbox
    for i in range(3):
        runner.run(s.append(inbox.id, message(f"m{i}")))
    runner.run(s.rename_mailbox(alice, "INBOX", "Old"))
    old = runner.run(s.get_mailbox(alice, "Old"))
    inbox2 = runner.run(s.get_mailbox(alice, INBOX))
    assert old and inbox2 and old.messages == 3 and inbox2.messages == 0
    assert inbox2.uidnext == 4  # UIDs in INBOX are not reused
    assert runner.run(s.check()) == []


def test_quota(runner: StoreRunner) -> None:
    s = runner.store
    runner.run(s.add_domain("example.test"))
    u = runner.run(s.add_user("q@example.test", "pw", quota_bytes=0, quota_messages=2))
    inbox = runner.run(s.get_mailbox(u.id, INBOX))
    assert inbox
    runner.run(s.append(inbox.id, message("1")))
    runner.run(s.append(inbox.id, message("2")))
    with pytest.raises(QuotaExceeded):
        runner.run(s.append(inbox.id, message("3")))
    with pytest.raises(QuotaExceeded):
        runner.run(s.copy(inbox.id, [1], inbox.id))
    usage = runner.run(s.usage(u.id))
    assert usage.messages == 2
    runner.run(s.set_quota("q@example.test", 10, 0))
    with pytest.raises(QuotaExceeded):
        runner.run(s.append(inbox.id, message("4")))
    # the refused message left no file behind
    assert runner.run(s.stats()).extra["files"] == 2
    assert stored_blobs(runner) == 2


def stored_blobs(r: StoreRunner) -> int:
    """Message files (SQLite) or rows of message bytes (PostgreSQL) actually stored."""
    if r.backend == "postgres":
        from courriel.store.postgres.store import PostgresStore

        assert isinstance(r.store, PostgresStore)
        row = r.run(r.store.db.one("SELECT COUNT(*) FROM blob_data"))
        return int(row[0]) if row else 0
    from courriel.store.sqlite.store import SQLiteStore

    assert isinstance(r.store, SQLiteStore)
    return sum(1 for _ in r.store.blobs.iter_ids())


def test_search_and_sort(runner: StoreRunner) -> None:
    s = runner.store
    alice, _ = setup_users(runner)
    inbox = runner.run(s.get_mailbox(alice, INBOX))
    assert inbox
    msgs = [
        b"From: Zoe <zoe@example.test>\r\nTo: alice@example.test\r\nSubject: Re: Lunch\r\n"
        b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nSee you at noon.\r\n",
        b"From: =?utf-8?q?Andr=C3=A9?= <andre@example.test>\r\nTo: alice@example.test\r\n"
        b"Subject: =?iso-8859-15?q?Caf=E9_au_lait?=\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        b"X-Priority: 1\r\n\r\nUn caf\xc3\xa9 ?\r\n",
        b"From: Bob <bob@example.test>\r\nTo: carol@example.test\r\nSubject: Budget\r\n"
        b"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\n" + b"numbers " * 200 + b"\r\n",
    ]
    for i, m in enumerate(msgs):
        runner.run(s.append(inbox.id, m, Flag.SEEN if i == 0 else Flag(0), frozenset({"$Work"}) if i == 2 else frozenset()))
    search = lambda key: runner.run(s.search(inbox.id, key))  # noqa: E731
    assert search(All()) == [1, 2, 3]
    assert search(Not(HasFlag(Flag.SEEN))) == [2, 3]
    assert search(HasKeyword("$work")) == [3]
    assert search(HeaderContains("from", "ANDRÉ")) == [2]
    assert search(HeaderContains("subject", "café")) == [2]
    assert search(HeaderContains("to", "carol")) == [3]
    assert search(HeaderContains("x-priority", "")) == [2]
    assert search(HeaderContains("X-Priority", "2")) == []
    assert search(BodyContains("NOON")) == [1]
    assert search(BodyContains("lunch")) == []
    assert search(BodyContains("lunch", whole=True)) == [1]
    assert search(SizeCompare(True, 1000)) == [3]
    assert search(Or((UidIn(((1, 1),)), UidIn(((3, 5),))))) == [1, 3]
    day = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    assert search(DateCompare(DateField.SENT, "on", day, day + 86400)) == [1]
    assert search(DateCompare(DateField.SENT, "before", day, day + 86400)) == [2]
    assert search(And((DateCompare(DateField.SENT, "since", day, day + 86400), Not(HasFlag(Flag.SEEN))))) == [3]
    sort = lambda *keys: runner.run(s.sort(inbox.id, keys, All()))  # noqa: E731
    assert sort(SortKey("date")) == [2, 1, 3]
    assert sort(SortKey("date", reverse=True)) == [3, 1, 2]
    assert sort(SortKey("subject")) == [3, 2, 1]  # budget, café au lait, lunch (Re: stripped)
    assert sort(SortKey("from")) == [2, 3, 1]  # andre, bob, zoe
    assert sort(SortKey("size", reverse=True))[0] == 3
    # with a filter (sorted rows, not the sort index), and after COPY (keys copied, schema 7)
    assert runner.run(s.sort(inbox.id, [SortKey("date")], Not(HasFlag(Flag.SEEN)))) == [2, 3]
    assert runner.run(s.sort(inbox.id, [SortKey("subject", reverse=True)], Not(HasFlag(Flag.SEEN)))) == [2, 3]
    other = runner.run(s.create_mailbox(alice, "Sorted"))
    runner.run(s.copy(inbox.id, [1, 2, 3], other.id))
    assert runner.run(s.sort(other.id, [SortKey("subject")], All())) == [3, 2, 1]
    assert runner.run(s.sort(other.id, [SortKey("date")], All())) == [2, 1, 3]


def test_object_id_keys(runner: StoreRunner) -> None:
    s = runner.store
    alice, _ = setup_users(runner)
    inbox = runner.run(s.get_mailbox(alice, INBOX))
    assert inbox
    for data in (b"Subject: lone\r\n\r\nno ids\r\n", message("root"), b"Subject: lone 2\r\n\r\nx\r\n"):
        runner.run(s.append(inbox.id, data))
    other = runner.run(s.create_mailbox(alice, "Copies"))
    runner.run(s.copy(inbox.id, [1, 2, 3], other.id))
    search = lambda key: runner.run(s.search(inbox.id, key))  # noqa: E731
    # RFC 8474 EMAILID / THREADID keys
    infos = runner.run(s.list_messages(inbox.id))
    assert search(ContentIs(infos[1].content_id)) == [2]
    assert runner.run(s.search(other.id, ContentIs(infos[1].content_id))) == [2]
    recs = runner.run(s.get_records(inbox.id, [1]))
    key = thread_key(recs[0].references, recs[0].in_reply_to, recs[0].message_id)
    assert key is None  # no Message-ID: a thread of its own
    assert search(InThread(thread_id(key, infos[0].content_id))) == [1]
    assert search(InThread(thread_id(None, infos[2].content_id))) == [3]
    assert search(InThread(thread_id(None, infos[1].content_id))) == []  # it has a Message-ID
    recs = runner.run(s.get_records(inbox.id, [2]))
    root = thread_key(recs[0].references, recs[0].in_reply_to, recs[0].message_id)
    assert root is not None
    assert search(InThread(root)) == [2]
    assert runner.run(s.search(other.id, InThread(root))) == [2]
    assert search(InThread("T" + "0" * 20)) == []


def test_change_feed_order(runner: StoreRunner) -> None:
    s = runner.store
    alice, bob = setup_users(runner)
    seen: list[object] = []
    sub = s.changes.subscribe(alice, seen.extend)
    everything: list[object] = []
    s.changes.subscribe(None, everything.extend)
    inbox = runner.run(s.get_mailbox(alice, INBOX))
    binbox = runner.run(s.get_mailbox(bob, INBOX))
    assert inbox and binbox
    runner.run(s.append(inbox.id, message("a")))
    runner.run(s.append(binbox.id, message("b")))
    runner.run(s.store_flags(inbox.id, [1], FlagMode.ADD, Flag.DELETED))
    runner.run(s.expunge(inbox.id))
    runner.settle()
    kinds = [type(c).__name__ for c in seen]
    assert kinds == ["MessageAdded", "FlagsChanged", "MessagesExpunged"]
    assert isinstance(seen[0], MessageAdded) and isinstance(seen[2], MessagesExpunged)
    assert seen[2].uids == (1,)
    assert len(everything) == 4
    sub.close()
    runner.run(s.append(inbox.id, message("c")))
    runner.settle()
    assert len(seen) == 3


def test_reopen_keeps_everything(runner: StoreRunner) -> None:
    alice, _ = setup_users(runner)
    inbox = runner.run(runner.store.get_mailbox(alice, INBOX))
    assert inbox
    data = message("persist")
    runner.run(runner.store.append(inbox.id, data))
    runner.reopen()
    (rec,) = runner.run(runner.store.get_records(inbox.id, [1]))
    assert hashlib.sha256(runner.run(runner.store.read_message(rec.blob))).digest() == hashlib.sha256(data).digest()


def test_claim_recent(runner: StoreRunner) -> None:
    s = runner.store
    alice, _ = setup_users(runner)
    inbox = runner.run(s.get_mailbox(alice, INBOX))
    assert inbox
    for i in range(3):
        runner.run(s.append(inbox.id, message(f"m{i}")))
    assert runner.run(s.claim_recent(inbox.id)) == 1  # UIDs 1..3 are recent for this session
    assert runner.run(s.claim_recent(inbox.id)) == 4  # and for nobody else
    runner.run(s.append(inbox.id, message("new")))
    assert runner.run(s.claim_recent(inbox.id, upto_uid=4)) == 4  # nothing below 4 left
    assert runner.run(s.claim_recent(inbox.id)) == 4  # UID 4 claimed now
    assert runner.run(s.claim_recent(inbox.id)) == 5


def test_thread_key_groups_a_thread() -> None:
    root = thread_key(None, None, "<root@x>")
    assert root is not None and root.startswith("T") and len(root) == 21
    assert thread_key("<root@x> <mid@x>", "<mid@x>", "<leaf@x>") == root  # References' first entry
    assert thread_key(None, "<root@x>", "<reply@x>") == root
    assert thread_key(" ", None, None) is None
    assert thread_id(None, 42) == "TC42"


def test_account_views_match_the_generic_versions(runner: StoreRunner) -> None:
    """The backend's own thread_rows / account_messages_of / account_received answer what the
    generic Store versions (built on snapshot, get_records, account_messages) answer."""
    from courriel.store.api import Store

    s = runner.store
    alice, _ = setup_users(runner)
    inbox = runner.run(s.get_mailbox(alice, INBOX))
    arch = runner.run(s.get_mailbox(alice, "Archive"))
    assert inbox and arch
    for i in range(6):
        data = message(f"view {i}") if i % 2 else f"Subject: r{i}\r\nReferences: <root@x>\r\n\r\n{i}\r\n".encode()
        runner.run(s.append(inbox.id, data, internal_date=datetime(2026, 1, 6 - i, tzinfo=UTC)))
    runner.run(s.copy(inbox.id, [2, 5], arch.id))
    assert sorted(runner.run(s.thread_rows(inbox.id))) == sorted(runner.run(Store.thread_rows(s, inbox.id)))
    contents = [m.content_id for m in runner.run(s.list_messages(inbox.id))][:3]
    assert runner.run(s.account_messages_of(alice, contents)) == runner.run(Store.account_messages_of(s, alice, contents))
    for box in (None, inbox.id, arch.id):
        assert runner.run(s.account_received(alice, box)) == runner.run(Store.account_received(s, alice, box))
    snap = runner.run(s.snapshot(inbox.id))
    assert snap.sizes is not None and snap.content_ids is not None
    assert list(snap.content_ids) == [m.content_id for m in runner.run(s.list_messages(inbox.id))]
