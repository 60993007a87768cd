"""store_flags over a range of UIDs (IMAP STORE 1:1000), whole or with holes: the rows,
MODSEQs, changes and mailbox counters agree with a message-by-message model."""

from __future__ import annotations

from courriel.store.api import INBOX, Flag, FlagMode
from courriel.store.changes import Change, FlagsChanged
from tests.conftest import StoreRunner, message

START = [Flag(0), Flag.SEEN, Flag.FLAGGED, Flag.SEEN | Flag.FLAGGED, Flag.DELETED, Flag(0), Flag.SEEN | Flag.DELETED]


def test_store_flags_over_ranges(runner: StoreRunner) -> None:
    s = runner.store
    runner.run(s.add_domain("example.test"))
    user = runner.run(s.add_user("alice@example.test", "pw")).id
    box = runner.run(s.get_mailbox(user, INBOX))
    assert box is not None
    for i, flags in enumerate(START):
        runner.run(s.append(box.id, message(f"m{i}"), flags, frozenset({"$k"}) if i == 2 else frozenset()))
    model = {i + 1: int(f) for i, f in enumerate(START)}
    changes: list[Change] = []
    sub = s.changes.subscribe(user, changes.extend)

    def store(uids: list[int], mode: FlagMode, flags: Flag) -> None:
        before = runner.run(s.get_mailbox_by_id(box.id))
        assert before is not None
        changes.clear()
        result = runner.run(s.store_flags(box.id, uids, mode, flags))
        runner.settle()
        expected = {}
        for uid in uids:
            if uid not in model:
                continue
            new = model[uid] | int(flags) if mode is FlagMode.ADD else model[uid] & ~int(flags)
            if new != model[uid]:
                expected[uid] = new
                model[uid] = new
        assert {i.uid: int(i.flags) for i in result.changed} == expected
        assert [(c.uid, c.flags) for c in changes if isinstance(c, FlagsChanged)] == sorted(expected.items())
        infos = {i.uid: i for i in runner.run(s.list_messages(box.id))}
        assert {uid: int(i.flags) for uid, i in infos.items()} == model
        assert infos[3].keywords == frozenset({"$k"})  # keywords untouched
        after = runner.run(s.get_mailbox_by_id(box.id))
        assert after is not None
        if expected:
            modseq = result.changed[0].modseq
            assert modseq > before.highestmodseq and after.highestmodseq == modseq
            assert {uid for uid, i in infos.items() if i.modseq == modseq} == set(expected)
        else:
            assert after.highestmodseq == before.highestmodseq
        assert after.unseen == sum(1 for f in model.values() if not f & Flag.SEEN)
        assert after.deleted == sum(1 for f in model.values() if f & Flag.DELETED)

    store(list(range(1, 8)), FlagMode.ADD, Flag.SEEN | Flag.FLAGGED)  # the whole range
    store(list(range(2, 6)), FlagMode.REMOVE, Flag.SEEN)
    store(list(range(2, 6)), FlagMode.REMOVE, Flag.SEEN)  # nothing left to change
    store([5, 4, 3], FlagMode.ADD, Flag.DELETED)  # unordered
    runner.run(s.expunge(box.id, [4]))
    del model[4]
    store(list(range(1, 8)), FlagMode.REMOVE, Flag.DELETED | Flag.FLAGGED)  # a hole at 4
    store([1, 3, 6], FlagMode.ADD, Flag.SEEN)
    store(list(range(5, 12)), FlagMode.REMOVE, Flag.SEEN)  # beyond the last UID
    sub.close()
