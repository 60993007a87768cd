"""delivery.submit: the shared authenticated-submission path (JMAP, webmail)."""

from __future__ import annotations

import pytest

from courriel.delivery.submit import SubmitError, submit
from courriel.store.api import INBOX
from tests.conftest import StoreRunner, message


def setup(runner: StoreRunner) -> None:
    st = runner.store
    runner.run(st.add_domain("example.test"))
    runner.run(st.add_user("alice@example.test", "pw"))
    runner.run(st.add_user("bob@example.test", "pw"))
    runner.run(st.add_alias("sales@example.test", ["bob@example.test", "partner@remote.example"]))
    runner.run(st.add_alias("al@example.test", ["alice@example.test"]))


def inbox_count(runner: StoreRunner, address: str) -> int:
    st = runner.store
    user = runner.run(st.get_user(address))
    assert user is not None
    box = next(b for b in runner.run(st.list_mailboxes(user.id)) if b.name == INBOX)
    return box.messages


def test_local_and_remote_recipients(runner: StoreRunner) -> None:
    setup(runner)
    msg = message(sender="alice@example.test")
    done = runner.run(
        submit(runner.store, "alice@example.test", "alice@example.test",
               ["bob@example.test", "sales@example.test", "carol@remote.example"], msg, hostname="mx.example.test")
    )  # fmt: skip
    assert inbox_count(runner, "bob@example.test") == 1  # once, although named twice (directly and by alias)
    assert sorted(done.queued) == ["carol@remote.example", "partner@remote.example"]
    queued = runner.run(runner.store.list_queue())
    assert len(queued) == 1 and queued[0].mail_from == "alice@example.test"
    assert done.queue_id == queued[0].id


def test_alias_sender_allowed(runner: StoreRunner) -> None:
    setup(runner)
    msg = message(sender="al@example.test")
    runner.run(submit(runner.store, "alice@example.test", "al@example.test", ["bob@example.test"], msg, hostname="h"))
    assert inbox_count(runner, "bob@example.test") == 1


@pytest.mark.parametrize(
    ("mail_from", "header_from", "rcpt", "code"),
    [
        ("bob@example.test", "alice@example.test", "bob@example.test", 553),  # envelope not owned
        ("alice@example.test", "bob@example.test", "bob@example.test", 553),  # From not owned
        ("alice@example.test", "alice@example.test", "nobody@example.test", 550),  # unknown local user
    ],
)
def test_refusals_store_nothing(runner: StoreRunner, mail_from: str, header_from: str, rcpt: str, code: int) -> None:
    setup(runner)
    with pytest.raises(SubmitError) as info:
        runner.run(submit(runner.store, "alice@example.test", mail_from, [rcpt], message(sender=header_from), hostname="h"))
    assert info.value.code == code
    assert inbox_count(runner, "bob@example.test") == 0
    assert runner.run(runner.store.list_queue()) == []


def test_bare_lf_refused(runner: StoreRunner) -> None:
    setup(runner)
    msg = message(sender="alice@example.test") + b"smuggled\n.\n"
    with pytest.raises(SubmitError) as info:
        runner.run(submit(runner.store, "alice@example.test", "alice@example.test", ["bob@example.test"], msg, hostname="h"))
    assert info.value.status == "5.6.0"


def test_trace_headers(runner: StoreRunner) -> None:
    setup(runner)
    runner.run(
        submit(runner.store, "alice@example.test", "alice@example.test", ["bob@example.test"],
               message(sender="alice@example.test"), hostname="mx.example.test", protocol="JMAP")
    )  # fmt: skip
    user = runner.run(runner.store.get_user("bob@example.test"))
    assert user is not None
    box = next(b for b in runner.run(runner.store.list_mailboxes(user.id)) if b.name == INBOX)
    msgs = runner.run(runner.store.list_messages(box.id))
    data = runner.run(runner.store.read_messages(box.id, [msgs[0].uid]))[msgs[0].uid]
    assert data.startswith(b"Return-Path: <alice@example.test>\r\nReceived: from webmail ([127.0.0.1])\r\n")
    assert b"with JMAP id" in data and b"(authenticated as alice@example.test)" in data
