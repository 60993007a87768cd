"""The JMAP vacation at local delivery (courriel.sieve.delivery), on the store directly: the
system script "jmap-vacation" runs first with only its vacation honoured, the active script
files as without it; one reply per message (the JMAP one wins over a script's own); none to
refused or junk mail; a script written by another node applies to the next message (scripts
are read at every delivery, only compiling is cached); Store.delivery_sieve_scripts on
every backend."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from courriel.delivery.local import LocalTarget
from courriel.jmap.vacation import generate
from courriel.sieve.delivery import VACATION_SCRIPT, MessageRejected, ScriptCache, deliver
from courriel.store.api import INBOX, SieveScript, Store
from tests.conftest import BACKENDS, StoreRunner

CAROL = "carol@example.test"
AWAY: dict[str, Any] = {"isEnabled": True, "fromDate": None, "toDate": None, "subject": "JMAP away",
                        "textBody": "Away (JMAP).", "htmlBody": None}  # fmt: skip
OWN_VACATION = 'require "vacation";\nvacation :days 1 :subject "script away" "Away (script).";\n'


@pytest.fixture(params=BACKENDS)
def store_runner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreRunner]:
    r = StoreRunner(tmp_path, request.param)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[StoreRunner]:
    r = StoreRunner(tmp_path)
    try:
        yield r
    finally:
        r.close()


async def _carol(store: Store) -> LocalTarget:
    await store.add_domain("example.test")
    user = await store.add_user(CAROL, "pw")
    for name in ("Lists", "Junk"):
        if await store.get_mailbox(user.id, name) is None:
            await store.create_mailbox(user.id, name)
    inbox = await store.get_mailbox(user.id, INBOX)
    assert inbox is not None
    return LocalTarget(user.id, CAROL, inbox.id, 0, 0)


def msg(subject: str, extra: str = "") -> bytes:
    return (f"From: pal@remote.example\r\nTo: {CAROL}\r\nSubject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@r>"
            f"\r\n{extra}\r\nhello\r\n").encode()  # fmt: skip


class Carol:
    def __init__(self, r: StoreRunner) -> None:
        self.r = r
        self.store = r.store
        self.target = r.run(_carol(r.store))
        self.cache = ScriptCache()

    def put(self, name: str, text: str, active: bool = False) -> None:
        self.r.run(self.store.put_sieve_script(self.target.user_id, name, text))
        if active:
            self.r.run(self.store.set_active_sieve_script(self.target.user_id, name))

    def away(self, obj: dict[str, Any]) -> None:
        self.put(VACATION_SCRIPT, generate(obj, 3, [CAROL]))

    def send(self, data: bytes, sender: str = "pal@remote.example", junk: bool = False) -> None:
        self.r.run(deliver(self.store, data, sender, [self.target], junk=junk, cache=self.cache))

    def replies(self) -> list[bytes]:
        async def read() -> list[bytes]:
            return [await self.store.read_message(q.blob) for q in await self.store.list_queue()]

        return self.r.run(read())

    def count(self, mailbox: str) -> int:
        async def read() -> int:
            box = await self.store.get_mailbox(self.target.user_id, mailbox)
            assert box is not None
            return len(await self.store.list_messages(box.id))

        return self.r.run(read())


def test_delivery_sieve_scripts_on_every_backend(store_runner: StoreRunner) -> None:
    c = Carol(store_runner)
    uid = c.target.user_id

    def read() -> tuple[SieveScript | None, SieveScript | None]:
        return store_runner.run(c.store.delivery_sieve_scripts(uid, VACATION_SCRIPT))

    assert read() == (None, None)
    c.away(AWAY)
    active, vacation = read()
    assert active is None and vacation is not None and vacation.name == VACATION_SCRIPT and not vacation.active
    c.put("main", "keep;", active=True)
    c.put("other", "discard;")
    active, vacation = read()
    assert active is not None and active.name == "main" and active.content == "keep;" and active.active
    assert vacation is not None and "Away (JMAP)." in vacation.content


def test_vacation_first_then_the_active_script_files(runner: StoreRunner) -> None:
    c = Carol(runner)
    c.put("main", 'require "fileinto";\nif header :contains "subject" "list" { fileinto "Lists"; }\n', active=True)
    c.away(AWAY)
    c.send(msg("list one"))
    (reply,) = c.replies()
    assert b"Subject: JMAP away" in reply and b"Away (JMAP)." in reply and b"Auto-Submitted: auto-replied" in reply
    assert b"In-Reply-To: <list.one@r>" in reply
    assert (c.count("Lists"), c.count(INBOX)) == (1, 0)  # the vacation's implicit keep is not one
    c.send(msg("two"))  # :days: one reply per sender; the script's implicit keep files it
    assert len(c.replies()) == 1 and c.count(INBOX) == 1
    # Another node rewrites the script in the store: the next message follows it (no stale cache).
    c.put("main", 'require "fileinto";\nfileinto "Lists";\n')
    c.send(msg("three"), sender="x@remote.example")
    assert (c.count("Lists"), c.count(INBOX), len(c.replies())) == (2, 1, 2)


def test_one_reply_the_jmap_one_wins(runner: StoreRunner) -> None:
    c = Carol(runner)
    c.put("main", OWN_VACATION, active=True)
    c.away(AWAY)
    c.send(msg("both"))
    (reply,) = c.replies()
    assert b"Away (JMAP)." in reply
    c.send(msg("again"))  # the JMAP one already answered within :days: the script's own stays quiet
    assert len(c.replies()) == 1
    # Outside the JMAP window (no vacation action runs), the script's own vacation answers.
    c.away({**AWAY, "toDate": "2020-01-01T00:00:00Z"})
    c.send(msg("window"), sender="y@remote.example")
    (_, own) = c.replies()
    assert b"Away (script)." in own and c.count(INBOX) == 3
    # Disabled: the script's own again, and nothing from the JMAP side.
    c.away({**AWAY, "isEnabled": False})
    c.send(msg("off"), sender="z@remote.example")
    assert [b"Away (script)." in r for r in c.replies()] == [False, True, True]


def test_no_reply_to_refused_junk_lists_or_bounces(runner: StoreRunner) -> None:
    c = Carol(runner)
    c.away(AWAY)
    c.send(msg("spam"), sender="spammer@remote.example", junk=True)
    assert c.count("Junk") == 1 and c.replies() == []
    c.send(msg("list", "List-Id: <l.remote.example>\r\n"), sender="list@remote.example")
    c.send(msg("auto", "Auto-Submitted: auto-replied\r\n"), sender="bot@remote.example")
    c.send(msg("bounce"), sender="")
    assert c.replies() == [] and c.count(INBOX) == 3
    c.put("main", 'require "ereject";\nereject "not here";\n', active=True)
    with pytest.raises(MessageRejected):
        c.send(msg("refused"), sender="r@remote.example")
    assert c.replies() == []
    c.put("main", 'require "reject";\nreject "not here";\n')
    c.send(msg("refused with a notice"), sender="r@remote.example")
    (notice,) = c.replies()
    assert b"not here" in notice and b"Away (JMAP)." not in notice


def test_a_broken_vacation_script_never_stops_filing(runner: StoreRunner, caplog: pytest.LogCaptureFixture) -> None:
    c = Carol(runner)
    c.put("main", 'require "fileinto";\nfileinto "Lists";\n', active=True)
    c.put(VACATION_SCRIPT, "this is not sieve")
    with caplog.at_level(logging.ERROR, "courriel.sieve"):
        c.send(msg("still filed"))
    assert c.count("Lists") == 1 and c.replies() == []
    assert any("does not compile" in r.message for r in caplog.records)
    # A leftover active "jmap-vacation" (a draft of this feature activated it) only runs as the vacation.
    c.away(AWAY)
    c.r.run(c.store.set_active_sieve_script(c.target.user_id, VACATION_SCRIPT))
    c.send(msg("leftover"))
    assert c.count(INBOX) == 1 and len(c.replies()) == 1
