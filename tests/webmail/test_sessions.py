"""courriel.webmail.sessions: expiry, CSRF comparison, frame capabilities."""

from __future__ import annotations

import time

import pytest

from courriel.webmail.sessions import SessionTable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def table(timeout: int = 60) -> tuple[SessionTable, Clock]:
    t = SessionTable(timeout)
    clock = Clock()
    t._now = clock
    return t, clock


def test_session_lives_while_used_and_ends_when_idle() -> None:
    t, clock = table(60)
    s = t.create(7, "a@example.test")
    assert len(s.token) >= 40 and s.token != s.csrf
    clock.now += 50
    assert t.get(s.token) is s  # activity extends it
    clock.now += 50
    assert t.get(s.token) is s and t.alive(s)
    clock.now += 61
    assert not t.alive(s)  # alive() is not activity
    assert t.get(s.token) is None
    assert t.get(None) is None and t.get("") is None and t.get("forged") is None


def test_drop_ends_one_session() -> None:
    t, _ = table()
    a1, a2 = t.create(1, "a@x"), t.create(1, "a@x")
    t.drop(a1.token)
    assert t.get(a1.token) is None and t.get(a2.token) is a2


@pytest.mark.parametrize("given", ["", None, "x", "A" * 32])
def test_csrf_must_match(given: str | None) -> None:
    t, _ = table()
    s = t.create(1, "a@x")
    assert not s.check_csrf(given)
    assert s.check_csrf(s.csrf)


def test_capability_names_one_message_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    t, _ = table()
    cap = t.sign(3, 42)
    assert t.verify(3, 42, cap)
    for mailbox, uid in ((3, 43), (4, 42)):
        assert not t.verify(mailbox, uid, cap)
    expires, _, mac = cap.partition(".")
    assert not t.verify(3, 42, f"{int(expires) + 1}.{mac}")  # the expiry is signed too
    for garbage in ("", None, ".", "abc.def", "99999999999999999999999.x", "²." + mac):
        assert not t.verify(3, 42, garbage)
    assert not SessionTable(60).verify(3, 42, cap)  # another process (restart): another key
    future = time.time() + 13 * 3600
    monkeypatch.setattr(time, "time", lambda: future)
    assert not t.verify(3, 42, cap)
