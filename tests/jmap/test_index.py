"""The account view and /changes straight on the store: a view patched from
``message_changes`` equals one read whole, and created/updated/destroyed are exact across
IMAP-style operations (append, copy, move, flags, expunge, mailbox deletion)."""

from __future__ import annotations

from typing import Any

import pytest

from courriel.jmap.index import AccountIndex, email_id, thread_of
from courriel.jmap.sync import Life, compute
from courriel.store.api import INBOX, Flag, FlagMode
from tests.conftest import BACKENDS, StoreRunner, message


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Both store backends: the change tracking is theirs to keep."""
    return str(request.param)


def view(idx: AccountIndex) -> dict[str, Any]:
    return {
        "emails": {c: (sorted(e.copies), e.flags, e.keywords, e.thread, e.boxes) for c, e in idx.emails.items()},
        "threads": idx.threads,
    }


def changes(r: StoreRunner, user_id: int, since: int) -> tuple[list[str], list[str], list[str], bool]:
    copies, complete = r.run(r.store.message_changes(user_id, since))
    objects: dict[str, list[Life]] = {}
    for c in copies:
        objects.setdefault(email_id(c.content_id), []).append(Life(c.created_modseq, c.modseq, c.removed))
    user = r.run(r.store.get_user_by_id(user_id))
    assert user is not None
    ch = compute(objects, since, user.modseq, None)
    return sorted(ch.created), sorted(ch.updated), sorted(ch.destroyed), complete


def test_patched_view_and_changes(runner: StoreRunner) -> None:
    r, s = runner, runner.store
    r.run(s.add_domain("example.test"))
    user = r.run(s.add_user("alice@example.test", "pw"))
    inbox = r.run(s.get_mailbox(user.id, INBOX))
    archive = r.run(s.get_mailbox(user.id, "Archive"))
    assert inbox and archive
    first = r.run(s.append(inbox.id, message("one")))
    second = r.run(s.append(inbox.id, message("two")))
    threads: dict[int, str] = {}

    def modseq() -> int:
        u = r.run(s.get_user_by_id(user.id))
        assert u is not None
        return u.modseq

    base = modseq()
    idx = AccountIndex.build(base, r.run(s.account_messages(user.id)), threads)
    m1, m2 = email_id(first.content_id), email_id(second.content_id)

    r.run(s.store_flags(inbox.id, [first.uid], FlagMode.ADD, Flag.SEEN, frozenset({"$label"})))
    third = r.run(s.append(inbox.id, message("three")))
    m3 = email_id(third.content_id)
    assert changes(r, user.id, base) == ([m3], [m1], [], True)

    mid = modseq()
    r.run(s.copy(inbox.id, [second.uid], archive.id))  # now in two mailboxes: updated, not created
    r.run(s.move(inbox.id, [first.uid], archive.id))  # one copy replaces another: updated
    r.run(s.delete_messages(inbox.id, [third.uid]))  # destroyed
    assert changes(r, user.id, mid) == ([], [m1, m2], [m3], True)
    assert changes(r, user.id, base) == ([], [m1, m2], [], True)  # three came and went

    for since_idx in (idx, AccountIndex.build(mid, r.run(s.account_messages(user.id)), threads)):
        copies, complete = r.run(s.message_changes(user.id, since_idx.modseq))
        assert complete
        touched = {c.content_id for c in copies}
        patched = since_idx.updated(modseq(), touched, r.run(s.account_messages_of(user.id, sorted(touched))), threads)
        whole = AccountIndex.build(modseq(), r.run(s.account_messages(user.id)), {})
        assert view(patched) == view(whole)
    for row in r.run(s.account_messages(user.id)):  # the stored thread key is IMAP's THREADID
        assert whole.emails[row.content_id].thread == thread_of(row.references, row.in_reply_to, row.message_id, row.content_id)
    entry = whole.emails[second.content_id]
    assert entry.boxes == {inbox.id, archive.id}
    assert whole.emails[first.content_id].has_keyword("$SEEN") and whole.emails[first.content_id].has_keyword("$label")

    # deleting a mailbox takes its tombstones: changes across it cannot be told exactly
    late = modseq()
    r.run(s.create_mailbox(user.id, "Tmp"))
    tmp = r.run(s.get_mailbox(user.id, "Tmp"))
    assert tmp is not None
    r.run(s.copy(archive.id, [1], tmp.id))
    r.run(s.delete_mailbox(user.id, "Tmp"))
    assert changes(r, user.id, late)[3] is False
    boxes = {(c.mailbox_id, c.removed) for c in r.run(s.mailbox_changes(user.id, late))}
    assert (tmp.id, True) in boxes
