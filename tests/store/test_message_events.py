"""Message events (the journey table): add in one batch, list per content, delete with the
user, prune by age; on every backend."""

from __future__ import annotations

from courriel.store.api import MessageEvent
from tests.conftest import StoreRunner


def test_add_list_prune_and_delete_with_user(runner: StoreRunner) -> None:
    s = runner.store
    runner.run(s.add_domain("example.test"))
    alice = runner.run(s.add_user("alice@example.test", "pw-a"))
    bob = runner.run(s.add_user("bob@example.test", "pw-b"))
    events = [
        MessageEvent(alice.id, 7, 200.0, "retrieved", "IMAP", "127.0.0.1", {"peek": False}),
        MessageEvent(alice.id, 7, 100.0, "delivered", "LMTP", "", {"mailboxes": ["Lists/ü"], "actions": ["fileinto"]}),
        MessageEvent(alice.id, 8, 150.0, "retrieved", "POP3", "::1", {}),
        MessageEvent(bob.id, 7, 120.0, "delivered", "SMTP", "", {"junk": True}),
        MessageEvent(999_999, 7, 120.0, "delivered", "SMTP", "", {}),  # no such user: dropped
    ]
    runner.run(s.add_message_events(events))
    runner.run(s.add_message_events([]))
    got = runner.run(s.message_events(alice.id, 7))
    assert [(e.kind, e.time, e.protocol, e.client) for e in got] == [
        ("delivered", 100.0, "LMTP", ""),
        ("retrieved", 200.0, "IMAP", "127.0.0.1"),
    ]
    assert got[0].details == {"mailboxes": ["Lists/ü"], "actions": ["fileinto"]}
    assert got[1].details == {"peek": False} and got[0].id and got[0].id != got[1].id
    assert all(e.user_id == alice.id and e.content_id == 7 for e in got)
    assert [e.details for e in runner.run(s.message_events(bob.id, 7))] == [{"junk": True}]
    assert runner.run(s.message_events(999_999, 7)) == []

    assert runner.run(s.prune_message_events(110.0)) == 1  # alice's delivery at 100
    assert [e.kind for e in runner.run(s.message_events(alice.id, 7))] == ["retrieved"]

    runner.run(s.delete_user("alice@example.test"))
    runner.reopen()
    s = runner.store
    assert runner.run(s.message_events(alice.id, 7)) == []
    assert runner.run(s.message_events(alice.id, 8)) == []
    assert len(runner.run(s.message_events(bob.id, 7))) == 1


def test_large_batch(runner: StoreRunner) -> None:
    s = runner.store
    runner.run(s.add_domain("example.test"))
    alice = runner.run(s.add_user("alice@example.test", "pw-a"))
    runner.run(s.add_message_events([MessageEvent(alice.id, i % 3, float(i), "retrieved", "IMAP") for i in range(2500)]))
    assert len(runner.run(s.message_events(alice.id, 1))) == 833
