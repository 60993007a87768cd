"""Two sessions on one mailbox: aioimaplib in IDLE (RFC 2177) and imaplib with NOOP see the
other session's APPEND, STORE, EXPUNGE and MOVE as EXISTS, FETCH and EXPUNGE responses
(RFC 9051 §7.3.1, §7.4.1, §7.5.1), never an EXPUNGE during FETCH, STORE or SEARCH (§7.5.1)."""

from __future__ import annotations

import asyncio
import imaplib
import re

import aioimaplib  # type: ignore[import-untyped]

from tests.imap_interop.clients import ALICE, Clients, fetch, ok, tls_context, untagged
from tests.imap_interop.peers import Target

PUSH_WAIT = 30.0  # a bound against hanging, not a timing assertion


def _msg(i: int) -> bytes:
    return f"From: x@example.org\r\nSubject: c{i}\r\n\r\nbody {i}\r\n".encode()


class Pushes:
    """What an aioimaplib session in IDLE received, read until a wanted line arrives."""

    def __init__(self, client: aioimaplib.IMAP4) -> None:
        self.client = client
        self.lines: list[str] = []

    async def until(self, pattern: str) -> str:
        rx = re.compile(pattern, re.I)
        while True:
            for line in self.lines:
                if rx.fullmatch(line):
                    self.lines.remove(line)
                    return line
            push = await self.client.wait_server_push(timeout=PUSH_WAIT)
            items = push if isinstance(push, list) else [push]
            self.lines += [i.decode() if isinstance(i, bytes) else str(i) for i in items]


async def _idle_scenario(target: Target) -> None:
    client = aioimaplib.IMAP4_SSL(target.host, target.imaps_port, ssl_context=tls_context(target), timeout=PUSH_WAIT)
    await client.wait_hello_from_server()
    assert (await client.login(ALICE, target.users[ALICE])).result == "OK"
    assert (await client.create("IdleBox")).result == "OK"
    assert (await client.create("IdleOther")).result == "OK"
    for i in range(3):
        assert (await client.append(_msg(i), mailbox="IdleBox")).result == "OK"
    assert (await client.select("IdleBox")).result == "OK"
    assert "IDLE" in client.protocol.capabilities

    other = imaplib.IMAP4(target.host, target.imap_port, timeout=30)
    try:
        ok(other.login(ALICE, target.users[ALICE]))
        idle = await client.idle_start(timeout=PUSH_WAIT * 4)
        pushes = Pushes(client)
        loop = asyncio.get_running_loop()

        async def run(*call: object) -> None:  # the other session's commands, off the loop
            func, *args = call
            res: tuple[str, list[object]] = await loop.run_in_executor(None, func, *args)  # type: ignore[arg-type]
            assert res[0] == "OK", res

        await run(other.append, "IdleBox", None, None, _msg(3))
        await pushes.until(r"4 EXISTS")  # §7.4.1
        await run(other.select, "IdleBox")
        await run(other.store, "2", "+FLAGS.SILENT", "(\\Flagged)")
        line = await pushes.until(r"2 FETCH \(.*FLAGS \([^)]*\).*\)")  # §7.5.2: flags of the other session
        assert "\\Flagged" in line
        await run(other.store, "1", "+FLAGS.SILENT", "(\\Deleted)")
        await pushes.until(r"1 FETCH \(.*\\Deleted.*\)")
        await run(other.expunge)
        await pushes.until(r"1 EXPUNGE")  # message 1 gone; the others are now 1..3
        await run(other._simple_command, "MOVE", "1", "IdleOther")
        await pushes.until(r"1 EXPUNGE")

        client.idle_done()
        res = await asyncio.wait_for(idle, PUSH_WAIT)
        assert res.result == "OK"
        # after IDLE the session's view matches the mailbox: messages 3 and 4 of the original 4
        res = await client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert res.result == "OK"
        subjects = re.findall(rb"Subject: (c\d)", b"".join(bytes(x) for x in res.lines if isinstance(x, (bytes, bytearray))))
        assert subjects == [b"c2", b"c3"]
    finally:
        other.logout()
        await client.logout()


def test_idle_sees_other_sessions(target: Target) -> None:
    import imaplib as _imaplib

    _imaplib.Commands.setdefault("MOVE", ("SELECTED",))
    asyncio.run(asyncio.wait_for(_idle_scenario(target), 120))


def test_noop_sees_other_sessions(target: Target, clients: Clients) -> None:
    imaplib.Commands.setdefault("MOVE", ("SELECTED",))
    a, b = clients.login(), clients.login()
    ok(a.create("NoopBox"))
    ok(a.create("NoopOther"))
    for i in range(4):
        ok(a.append("NoopBox", None, None, _msg(i)))
    ok(a.select("NoopBox"))
    ok(b.select("NoopBox"))

    a.untagged_responses.clear()
    ok(b.append("NoopBox", "(\\Seen)", None, _msg(4)))
    ok(a.noop())
    assert untagged(a, "EXISTS")[-1:] == [b"5"]
    ok(b.store("3", "+FLAGS.SILENT", "(\\Answered)"))
    ok(a.noop())
    changed = untagged(a, "FETCH")
    assert any(re.match(rb"3 \(.*\\Answered", c) for c in changed), changed

    # §7.5.1: no EXPUNGE while a FETCH, STORE or SEARCH by sequence number runs
    ok(b.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
    ok(b.expunge())
    a.untagged_responses.clear()
    a.fetch("1:4", "(FLAGS)")
    a.search(None, "ALL")
    a.store("1", "+FLAGS.SILENT", "(\\Seen)")
    assert "EXPUNGE" not in a.untagged_responses
    ok(a.noop())  # now it may come
    assert untagged(a, "EXPUNGE") == [b"2"]
    subjects = [v[b"BODY[HEADER.FIELDS (SUBJECT)]"] for _, v in sorted(fetch(a, "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])").items())]
    assert subjects == [f"Subject: c{i}\r\n\r\n".encode() for i in (0, 2, 3, 4)]

    typ, _ = b._simple_command("MOVE", "1", "NoopOther")
    assert typ == "OK"
    ok(a.noop())
    assert untagged(a, "EXPUNGE") == [b"1"]
    # a UID FETCH may be told of expunges (§7.5.1 allows it for UID commands); the view stays right
    ok(b.append("NoopBox", None, None, _msg(5)))
    uids = fetch(a, "1:*", "(UID)", uid=True)
    ok(a.noop())
    assert len(fetch(a, "1:*", "(UID)")) == 4
    assert len(uids) in (3, 4)  # the new message is seen once EXISTS announced it
