"""JMAP EmailSubmission records (table email_submissions): add, list, update the delivery
status, destroy into tombstones, change numbers per user; deleted with the user; on every
backend."""

from __future__ import annotations

import dataclasses

import pytest

from courriel.store.api import AlreadyExists, EmailSubmissionRecord, NotFound
from tests.conftest import StoreRunner


def _record(user_id: int, sid: str, queue_id: int | None = None) -> EmailSubmissionRecord:
    return EmailSubmissionRecord(
        sid, user_id, "Iabc", "M7", "T7", {"mailFrom": {"email": "a@example.test"}, "rcptTo": [{"email": "ü@x.example"}]},
        1700000000.5, queue_id, {"ü@x.example": {"delivered": "queued", "smtpReply": "250 2.0.0 Queued"}},
    )  # fmt: skip


def test_submission_records(runner: StoreRunner) -> None:
    s = runner.store
    runner.run(s.add_domain("example.test"))
    alice = runner.run(s.add_user("alice@example.test", "pw-a"))
    bob = runner.run(s.add_user("bob@example.test", "pw-b"))
    assert runner.run(s.email_submissions(alice.id)) == []
    assert runner.run(s.add_email_submission(_record(alice.id, "S1", 42))) == 1
    assert runner.run(s.add_email_submission(_record(alice.id, "S2"))) == 2
    assert runner.run(s.add_email_submission(_record(bob.id, "S1"))) == 1  # numbers are per user
    with pytest.raises(AlreadyExists):
        runner.run(s.add_email_submission(_record(alice.id, "S1")))
    with pytest.raises(NotFound):
        runner.run(s.add_email_submission(_record(999_999, "S9")))

    got = runner.run(s.email_submissions(alice.id))
    assert [(r.id, r.created, r.changed, r.destroyed, r.queue_id) for r in got] == [
        ("S1", 1, 1, False, 42), ("S2", 2, 2, False, None),
    ]  # fmt: skip
    assert got[0] == dataclasses.replace(_record(alice.id, "S1", 42), created=1, changed=1)

    done = {"ü@x.example": {"delivered": "yes", "smtpReply": "250 ok"}}
    assert runner.run(s.update_email_submission(alice.id, "S1", done)) == 3
    with pytest.raises(NotFound):
        runner.run(s.update_email_submission(alice.id, "S9", done))
    assert runner.run(s.destroy_email_submissions(alice.id, ["S2", "S9", "S2"])) == ["S2"]
    assert [r.id for r in runner.run(s.email_submissions(alice.id))] == ["S1"]
    everything = runner.run(s.email_submissions(alice.id, tombstones=True))
    assert [(r.id, r.created, r.changed, r.destroyed) for r in everything] == [("S1", 1, 3, False), ("S2", 2, 4, True)]
    assert everything[0].delivery == done
    with pytest.raises(NotFound):  # a tombstone is not updated
        runner.run(s.update_email_submission(alice.id, "S2", done))
    assert runner.run(s.destroy_email_submissions(alice.id, ["S2"])) == []

    runner.run(s.delete_user("alice@example.test"))
    runner.reopen()
    s = runner.store
    assert runner.run(s.email_submissions(alice.id, tombstones=True)) == []
    assert [r.id for r in runner.run(s.email_submissions(bob.id))] == ["S1"]

