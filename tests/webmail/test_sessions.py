"""courriel.webmail.sessions on a real SQLite store: the store is the truth, the table a
cache (idle timeout, maximum lifetime, logout, password change, another process or node),
batched last-seen writes, CSRF comparison, frame capabilities."""

from __future__ import annotations

import hashlib
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from courriel.store.api import Store
from courriel.webmail.sessions import CAPABILITY_TTL, MAX_TOKEN, RECHECK, Session, SessionTable
from tests.conftest import StoreRunner

T = TypeVar("T")


class Runner:
    """A StoreRunner on a thread of its own: Playwright's sync API (the package's browser)
    keeps an event loop running on the main thread."""

    def __init__(self, root: Path) -> None:
        self.pool = ThreadPoolExecutor(1)
        self.inner: StoreRunner = self.pool.submit(StoreRunner, root).result()

    @property
    def store(self) -> Store:
        return self.inner.store

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.pool.submit(self.inner.run, coro).result()

    def reopen(self) -> None:
        self.pool.submit(self.inner.reopen).result()

    def close(self) -> None:
        self.pool.submit(self.inner.close).result()
        self.pool.shutdown()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(tmp_path)
    r.run(r.store.add_domain("example.test"))
    r.run(r.store.add_user("a@example.test", "pw-a"))
    r.run(r.store.add_user("b@example.test", "pw-b"))
    try:
        yield r
    finally:
        r.close()


def table(store: Store, clock: Clock, timeout: int = 60, max_age: int = 1000) -> SessionTable:
    return SessionTable(store, timeout, max_age, clock)


def login(r: Runner, t: SessionTable, user_id: int = 1) -> tuple[Session, str]:
    return r.run(t.create(user_id, "a@example.test", "192.0.2.7", "Mozilla/5.0 " + "x" * 1000))


def test_the_store_keeps_a_hash_of_the_token_and_the_client(runner: Runner) -> None:
    clock = Clock()
    t = table(runner.store, clock)
    s, token = login(runner, t)
    assert len(token) >= 40 and token != s.csrf
    rows = runner.run(runner.store.list_web_sessions(1))
    assert len(rows) == 1
    row = rows[0]
    assert row.token_hash == hashlib.sha256(token.encode()).digest() and row.token_hash == s.token_hash
    assert token not in repr(row) and row.secret == s.secret
    # the page's CSRF token is derived from the secret and gives it away no more than the token
    assert s.csrf not in (row.secret, token) and s.secret not in (s.csrf, token)
    assert row.client_ip == "192.0.2.7" and row.user_agent.startswith("Mozilla/5.0") and len(row.user_agent) == 256
    assert (row.created, row.last_seen, row.expires) == (clock.now, clock.now, clock.now + 1000)
    assert runner.run(t.get(token)) is s


def test_idle_timeout_and_maximum_lifetime(runner: Runner) -> None:
    clock = Clock()
    t = table(runner.store, clock, timeout=60, max_age=150)
    s, token = login(runner, t)
    for _ in range(2):
        clock.now += 50
        assert runner.run(t.get(token)) is s  # activity extends it
    assert runner.run(t.alive(s))
    clock.now += 61
    assert not runner.run(t.alive(s))  # alive() is not activity
    assert runner.run(t.get(token)) is None

    s2, token2 = login(runner, t)
    for _ in range(3):
        clock.now += 50
        assert runner.run(t.get(token2)) is s2
    clock.now += 1  # 151 s after the login: past the maximum lifetime however active
    assert runner.run(t.get(token2)) is None
    assert runner.run(t.prune()) == 2 and runner.run(runner.store.list_web_sessions(1)) == []


@pytest.mark.parametrize("token", [None, "", "forged", "A" * 43, "x" * (MAX_TOKEN + 1)])
def test_unknown_tokens_are_refused(runner: Runner, token: str | None) -> None:
    t = table(runner.store, Clock())
    login(runner, t)
    assert runner.run(t.get(token)) is None


def test_a_restart_or_another_node_finds_the_session(runner: Runner) -> None:
    clock = Clock()
    node_a, node_b = table(runner.store, clock), table(runner.store, clock)
    s, token = login(runner, node_a)
    found = runner.run(node_b.get(token))
    assert found is not None and found.id == s.id and found.csrf == s.csrf and found.address == "a@example.test"
    runner.reopen()  # the process restarts
    restarted = table(runner.store, clock)
    again = runner.run(restarted.get(token))
    assert again is not None and again.id == s.id and again.check_csrf(s.csrf)


def test_logout_on_one_node_ends_the_session_on_the_other(runner: Runner) -> None:
    clock = Clock()
    node_a, node_b = table(runner.store, clock), table(runner.store, clock)
    s, token = login(runner, node_a)
    other, other_token = login(runner, node_a)
    assert runner.run(node_b.get(token)) is not None
    runner.run(node_a.drop(s))
    assert runner.run(node_a.get(token)) is None
    clock.now += RECHECK  # node B trusts its cache that long, then asks the store
    assert runner.run(node_b.get(token)) is None
    assert runner.run(node_b.get(other_token)) is not None and other.id != s.id


def test_password_change_and_user_deletion_end_every_session(runner: Runner) -> None:
    clock = Clock()
    t = table(runner.store, clock)
    a1, t1 = login(runner, t)
    a2, t2 = login(runner, t)
    b, tb = login(runner, t, user_id=2)
    runner.run(runner.store.set_password("a@example.test", "new-pw"))
    assert runner.run(t.get(t1)) is a1  # cached until RECHECK
    clock.now += RECHECK
    assert runner.run(t.get(t1)) is None and runner.run(t.get(t2)) is None
    assert not runner.run(t.alive(a2))
    assert runner.run(t.get(tb)) is b
    runner.run(runner.store.delete_user("b@example.test"))
    clock.now += RECHECK
    assert runner.run(t.get(tb)) is None


def test_last_seen_is_written_in_batches(runner: Runner) -> None:
    clock = Clock()
    t = table(runner.store, clock)
    s1, t1 = login(runner, t)
    s2, t2 = login(runner, t)
    writes: list[list[tuple[int, float]]] = []
    touch = runner.store.touch_web_sessions

    async def counting(seen: Sequence[tuple[int, float]]) -> None:
        writes.append(list(seen))
        await touch(seen)

    runner.store.touch_web_sessions = counting  # type: ignore[method-assign]
    for _ in range(20):
        clock.now += 1
        runner.run(t.get(t1))
        runner.run(t.get(t2))
    assert writes == []  # no write per request
    assert [r.last_seen for r in runner.run(runner.store.list_web_sessions(1))] == [s2.created, s1.created]
    runner.run(t.flush())
    runner.run(t.flush())  # nothing new: no write
    assert writes == [[(s1.id, clock.now), (s2.id, clock.now)]]
    assert {r.last_seen for r in runner.run(runner.store.list_web_sessions(1))} == {clock.now}
    # another node, idle here, takes the later time from the store instead of expiring it
    other = table(runner.store, clock)
    assert runner.run(other.get(t1)) is not None
    clock.now += 59
    runner.run(t.get(t1))
    runner.run(t.flush())
    clock.now += 30  # 89 s after node "other" saw it, 30 s after the last request anywhere
    assert runner.run(other.get(t1)) is not None


@pytest.mark.parametrize("given", ["", None, "x", "A" * 32])
def test_csrf_must_match(runner: Runner, given: str | None) -> None:
    s, _ = login(runner, table(runner.store, Clock()))
    assert not s.check_csrf(given)
    assert s.check_csrf(s.csrf)
    assert not s.check_csrf(s.secret)  # the stored secret is not the token


def test_a_capability_cannot_be_made_from_the_pages_csrf_token(runner: Runner) -> None:
    import hashlib as h
    import hmac

    t = table(runner.store, Clock())
    s, _ = login(runner, t)
    sid, expires, _ = t.sign(s, 3, 42).split(".")
    for key in (s.csrf.encode(), hmac.new(s.csrf.encode(), b"courriel webmail frame capability", h.sha256).digest()):
        mac = hmac.new(key, f"{sid}:3:42:{expires}".encode(), h.sha256).hexdigest()[:32]
        assert runner.run(t.verify(3, 42, f"{sid}.{expires}.{mac}")) is None


def test_capability_names_one_message_and_ends_with_its_session(runner: Runner) -> None:
    clock = Clock()
    t = table(runner.store, clock, timeout=10 * CAPABILITY_TTL, max_age=100 * CAPABILITY_TTL)
    s, _ = login(runner, t)
    cap = t.sign(s, 3, 42)
    assert runner.run(t.verify(3, 42, cap)) is s
    for mailbox, uid in ((3, 43), (4, 42)):
        assert runner.run(t.verify(mailbox, uid, cap)) is None
    sid, expires, mac = cap.split(".")
    assert runner.run(t.verify(3, 42, f"{sid}.{int(expires) + 1}.{mac}")) is None  # the expiry is signed too
    assert runner.run(t.verify(3, 42, f"{int(sid) + 1}.{expires}.{mac}")) is None  # so is the session
    for garbage in ("", None, ".", "..", "abc.def.x", "1.99999999999999999999999.x", "².1." + mac, "1." * 60):
        assert runner.run(t.verify(3, 42, garbage)) is None
    other_node = table(runner.store, clock, timeout=10 * CAPABILITY_TTL, max_age=100 * CAPABILITY_TTL)
    found = runner.run(other_node.verify(3, 42, cap))  # valid on every node of the store
    assert found is not None and found.id == s.id
    clock.now += CAPABILITY_TTL + 1
    assert runner.run(t.verify(3, 42, cap)) is None
    cap = t.sign(s, 3, 42)
    runner.run(t.drop(s))  # logout ends its capabilities
    assert runner.run(t.verify(3, 42, cap)) is None
    clock.now += RECHECK
    assert runner.run(other_node.verify(3, 42, cap)) is None
