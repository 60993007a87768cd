"""The maildrop in-process: UPDATE as one store operation seen by other sessions through the
change feed, expunges made elsewhere during a session, read-ahead, the store method."""

from __future__ import annotations

import asyncio
import poplib
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from courriel.config import build_config
from courriel.pop3.server import Pop3Service, pop3_service
from courriel.server import Context
from courriel.store.api import INBOX, Flag, FlagMode, Mailbox, NewMessage
from courriel.store.changes import Change, MessagesExpunged
from tests.conftest import StoreRunner
from tests.harness import free_port
from tests.pop3.conftest import msg

T = TypeVar("T")
USER = "alice@example.test"
PASSWORD = "pw"


class Served:
    def __init__(self, runner: StoreRunner, tmp: Path) -> None:
        self.runner = runner
        self.port = free_port()
        raw = {"pop3": {"listen": f"127.0.0.1:{self.port}", "allow_plaintext_auth": True}}
        cfg = build_config(raw, env={}, data_dir=tmp)
        store = runner.store
        runner.run(store.add_domain("example.test"))
        user = runner.run(store.add_user(USER, PASSWORD))
        inbox = runner.run(store.get_mailbox(user.id, INBOX))
        assert inbox is not None
        self.user_id = user.id
        self.inbox: Mailbox = inbox
        self.clients: list[poplib.POP3] = []
        self.service: Pop3Service = pop3_service(Context(cfg, store))
        runner.run(self.service.start())

    def fill(self, messages: Sequence[bytes]) -> None:
        self.runner.run(self.runner.store.append_many(self.inbox.id, [NewMessage(m) for m in messages]))

    def client(self) -> poplib.POP3:
        def connect() -> poplib.POP3:
            p = poplib.POP3("127.0.0.1", self.port)
            self.clients.append(p)
            p.user(USER)
            p.pass_(PASSWORD)
            return p

        return self.call(connect)

    def call(self, fn: Callable[[], T]) -> T:
        """Run a blocking client call in a thread while the server's loop runs."""
        return self.runner.run(asyncio.to_thread(fn))

    def uids(self) -> list[int]:
        return [i.uid for i in self.runner.run(self.runner.store.list_messages(self.inbox.id))]


@pytest.fixture
def served(runner: StoreRunner, tmp_path: Path) -> Iterator[Served]:
    s = Served(runner, tmp_path)
    try:
        yield s
    finally:
        for client in s.clients:
            client.close()
        runner.run(s.service.stop())


def test_quit_expunges_in_one_operation_seen_by_other_sessions(served: Served) -> None:
    served.fill([msg(f"m{i}") for i in range(4)])
    seen: list[Change] = []
    served.runner.store.changes.subscribe(served.user_id, seen.extend)  # as an IMAP session does
    p = served.client()
    served.call(lambda: (p.dele(1), p.dele(3)))
    served.runner.settle()
    assert seen == []  # DELE only marks
    assert served.call(p.quit) == b"+OK bye, 2 messages deleted"
    served.runner.settle()
    expunges = [c for c in seen if isinstance(c, MessagesExpunged)]
    assert [(c.mailbox_id, c.uids) for c in expunges] == [(served.inbox.id, (1, 3))]
    assert served.uids() == [2, 4]
    box = served.runner.run(served.runner.store.get_mailbox_by_id(served.inbox.id))
    assert box is not None and box.messages == 2 and box.deleted == 0
    assert served.runner.run(served.runner.store.check()) == []


def test_expunge_elsewhere_during_a_session(served: Served) -> None:
    served.fill([msg("a"), msg("b"), msg("c")])
    p = served.client()
    store = served.runner.store
    # another protocol (IMAP) expunges message 2 while the POP3 session holds the maildrop
    served.runner.run(store.store_flags(served.inbox.id, [2], FlagMode.ADD, Flag.DELETED))
    served.runner.run(store.expunge(served.inbox.id))
    served.runner.settle()
    with pytest.raises(poplib.error_proto, match="message 2 was removed by another session"):
        served.call(lambda: p.retr(2))
    assert served.call(p.list)[1] == [f"1 {len(msg('a'))}".encode(), f"3 {len(msg('c'))}".encode()]
    assert served.call(p.stat) == (2, len(msg("a")) + len(msg("c")))
    assert served.call(lambda: p.retr(3))[1][-1] == b"Hello."
    served.call(lambda: p.dele(1))
    assert served.call(p.quit) == b"+OK bye, 1 messages deleted"
    assert served.uids() == [3]


def test_read_ahead_returns_the_right_message_in_any_order(served: Served) -> None:
    rng = random.Random(7)
    messages = [msg(f"r{i}", body=f"{i}: {'x' * 70}\r\n.dot\r\n" * rng.randint(0, 500)) for i in range(150)]
    served.fill(messages)
    p = served.client()

    def retr(n: int) -> bytes:
        resp, lines, octets = p.retr(n)
        data = b"".join(line + b"\r\n" for line in lines)
        assert resp == f"+OK {len(data)} octets".encode() and octets == len(data)
        return data

    assert served.call(lambda: [retr(n) for n in range(1, 151)]) == messages
    order = list(range(1, 151))
    rng.shuffle(order)
    assert served.call(lambda: [retr(n) for n in order]) == [messages[n - 1] for n in order]
    # a message read ahead, then expunged elsewhere, is not served from the read-ahead
    assert served.call(lambda: retr(10)) == messages[9]
    store = served.runner.store
    served.runner.run(store.delete_messages(served.inbox.id, [11]))
    served.runner.settle()
    with pytest.raises(poplib.error_proto, match="removed by another session"):
        served.call(lambda: p.retr(11))
    served.call(p.quit)


def test_delete_messages_store_operation(runner: StoreRunner) -> None:
    store = runner.store
    runner.run(store.add_domain("example.test"))
    user = runner.run(store.add_user(USER, PASSWORD))
    inbox = runner.run(store.get_mailbox(user.id, INBOX))
    assert inbox is not None
    runner.run(store.append_many(inbox.id, [NewMessage(msg(f"s{i}"), flags=Flag.SEEN if i else Flag(0))
                                            for i in range(4)]))  # fmt: skip
    before = runner.run(store.get_mailbox_by_id(inbox.id))
    assert before is not None
    seen: list[Change] = []
    store.changes.subscribe(user.id, seen.extend)
    assert runner.run(store.delete_messages(inbox.id, [1, 3, 99])) == [1, 3]
    assert runner.run(store.delete_messages(inbox.id, [])) == []
    runner.settle()
    assert len(seen) == 1 and isinstance(seen[0], MessagesExpunged) and seen[0].uids == (1, 3)
    after = runner.run(store.get_mailbox_by_id(inbox.id))
    assert after is not None
    assert (after.messages, after.unseen, after.deleted) == (2, 0, 0)
    assert after.highestmodseq == seen[0].modseq > before.highestmodseq
    _, gone = runner.run(store.changed_since(inbox.id, before.highestmodseq))
    assert gone == [1, 3]
    assert runner.run(store.read_messages(inbox.id, [1, 2, 4])) == {2: msg("s1"), 4: msg("s3")}
    assert runner.run(store.check()) == []
