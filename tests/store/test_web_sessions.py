"""Webmail sessions in the store (courriel.webmail.sessions keeps only a cache): found by
token hash or id, listed per user, last seen in batches that never go back, ended one by
one, per user, by a password change, with the user, and pruned when idle or past their
maximum lifetime; on every backend."""

from __future__ import annotations

import hashlib

import pytest

from courriel.store.api import NotFound
from tests.conftest import StoreRunner


def h(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def test_sessions_lifecycle(runner: StoreRunner) -> None:
    s = runner.store
    runner.run(s.add_domain("example.test"))
    alice = runner.run(s.add_user("alice@example.test", "pw-a"))
    bob = runner.run(s.add_user("bob@example.test", "pw-b"))
    a1 = runner.run(s.add_web_session(alice.id, h("a1"), "sec-a1", 1000.0, 5000.0, "127.0.0.1", "Firefox/1"))
    a2 = runner.run(s.add_web_session(alice.id, h("a2"), "sec-a2", 1100.0, 5100.0, "::1", "Chrome/2"))
    b1 = runner.run(s.add_web_session(bob.id, h("b1"), "sec-b1", 1200.0, 1300.0))
    assert a1.last_seen == 1000.0 and a1.id != a2.id
    with pytest.raises(NotFound):
        runner.run(s.add_web_session(999_999, h("x"), "s", 1.0, 2.0))

    found = runner.run(s.web_session(h("a1")))
    assert found == a1 and found.client_ip == "127.0.0.1" and found.user_agent == "Firefox/1"
    assert runner.run(s.web_session_by_id(a2.id)) == a2
    assert runner.run(s.web_session(h("nope"))) is None and runner.run(s.web_session_by_id(999_999)) is None

    # last seen: one batch; a time never moves back; unknown ids are ignored
    runner.run(s.touch_web_sessions([(a1.id, 2000.0), (a2.id, 1050.0), (999_999, 3000.0)]))
    runner.run(s.touch_web_sessions([]))
    assert runner.run(s.web_session(h("a1"))).last_seen == 2000.0  # type: ignore[union-attr]
    assert runner.run(s.web_session(h("a2"))).last_seen == 1100.0  # type: ignore[union-attr]
    assert [x.id for x in runner.run(s.list_web_sessions(alice.id))] == [a1.id, a2.id]  # latest seen first

    runner.reopen()  # durable: they survive a restart
    s = runner.store
    assert runner.run(s.web_session(h("a2"))) == a2

    runner.run(s.delete_web_session(a2.id))
    runner.run(s.delete_web_session(a2.id))  # already gone: no error
    assert runner.run(s.web_session(h("a2"))) is None

    # prune: idle (last seen before 1500: none left but b1, whose lifetime ended at 1300)
    assert runner.run(s.prune_web_sessions(1500.0, 1400.0)) == 1
    assert runner.run(s.web_session(h("b1"))) is None and runner.run(s.web_session(h("a1"))) is not None
    assert runner.run(s.prune_web_sessions(2500.0, 1400.0)) == 1  # a1 idle since 2000
    assert runner.run(s.list_web_sessions(alice.id)) == [] and b1.user_id == bob.id

    runner.run(s.add_web_session(alice.id, h("a3"), "s", 1.0, 9e9))
    runner.run(s.add_web_session(alice.id, h("a4"), "s", 1.0, 9e9))
    assert runner.run(s.delete_web_sessions(alice.id)) == 2 and runner.run(s.delete_web_sessions(alice.id)) == 0


def test_password_change_and_user_deletion_end_sessions(runner: StoreRunner) -> None:
    s = runner.store
    runner.run(s.add_domain("example.test"))
    alice = runner.run(s.add_user("alice@example.test", "pw-a"))
    bob = runner.run(s.add_user("bob@example.test", "pw-b"))
    for token in ("a1", "a2"):
        runner.run(s.add_web_session(alice.id, h(token), "s", 1.0, 9e9))
    runner.run(s.add_web_session(bob.id, h("b1"), "s", 1.0, 9e9))
    runner.run(s.set_password("alice@example.test", "new-pw"))
    assert runner.run(s.list_web_sessions(alice.id)) == []
    assert runner.run(s.web_session(h("a1"))) is None and runner.run(s.web_session(h("b1"))) is not None
    runner.run(s.delete_user("bob@example.test"))
    assert runner.run(s.web_session(h("b1"))) is None and runner.run(s.list_web_sessions(bob.id)) == []
    assert runner.run(s.check()) == []
