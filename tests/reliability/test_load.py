"""Mixed load: 200 concurrent clients for 60 seconds against one `courriel serve`.

- 50 MX clients (port 25 role): sessions of 1-8 messages, 1-3 local recipients each;
- 20 submission clients: AUTH PLAIN, then the same, From their own address;
- 80 IMAP clients (4 per user on 20 users): SELECT, UID FETCH FLAGS, UID SEARCH, FETCH
  BODY.PEEK[] (checksum verified), STORE, APPEND, delete (STORE \\Deleted + UID EXPUNGE),
  IDLE, NOOP, STATUS;
- 50 POP3 clients (one per maildrop): STAT, UIDL, RETR (checksum verified), DELE, QUIT.

Every message carries a unique Message-ID and its body checksum. The clients keep a ledger:
each (user, Message-ID) acknowledged (SMTP 250 per recipient, APPEND OK) and each deletion
acknowledged (UID EXPUNGE OK, POP3 QUIT +OK after DELE). At the end: no protocol error at
all, and the store holds exactly the delivered copies minus the deleted ones, each once and
intact; the server's peak RSS (from /proc) is reported and bounded; store check is clean.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness import CourrielServer, courriel_cmd
from tests.reliability.aioclients import Imap, Pop3, ProtocolError, Smtp, literal
from tests.reliability.common import (
    everything,
    intact,
    make_message,
    open_data,
    seeded_rng,
    store_check,
    summary,
)

DURATION = 60.0
MX_CLIENTS, SUBMISSION_CLIENTS, IMAP_CLIENTS, POP3_CLIENTS = 50, 20, 80, 50
IMAP_USERS = [f"imap{i}@example.test" for i in range(20)]
POP3_USERS = [f"pop{i}@example.test" for i in range(POP3_CLIENTS)]
ALL_USERS = IMAP_USERS + POP3_USERS
RSS_CEILING = 500 * 1024 * 1024
FAILURES = (ProtocolError, OSError, asyncio.IncompleteReadError, TimeoutError)


def password(user: str) -> str:
    return "pw-" + user.partition("@")[0]


@dataclass
class Ledger:
    rng: random.Random
    deadline: float
    delivered: Counter[tuple[str, str]] = field(default_factory=Counter)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    ops: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    serial: int = 0

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def message(self, sender: str, to: str) -> tuple[str, bytes]:
        self.serial += 1
        mid = f"load-{self.serial}@example.test"
        size = self.rng.choice([self.rng.randint(300, 6000)] * 9 + [self.rng.randint(20_000, 120_000)])
        return mid, make_message(mid, sender, to, self.rng, size=size)

    async def pause(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))


async def smtp_client(ledger: Ledger, port: int, user: str | None) -> None:
    """MX client (user None, a remote sender) or submission client (AUTH as user)."""
    rng = ledger.rng
    while not ledger.over():
        conn: Smtp | None = None
        try:
            conn = await Smtp.connect(port)
            if user is not None:
                await conn.auth_plain(user, password(user))
            for _ in range(rng.randint(1, 8)):
                rcpts = rng.sample(ALL_USERS, rng.randint(1, 3))
                sender = user or f"sender{rng.randint(0, 99)}@remote.test"
                mid, data = ledger.message(sender, rcpts[0])
                await conn.sendmail(sender, rcpts, data)
                for rcpt in rcpts:
                    ledger.delivered[(rcpt, mid)] += 1
                ledger.ops["smtp-submission" if user else "smtp-mx"] += 1
                await ledger.pause(0.05, 0.4)
                if ledger.over():
                    break
            await conn.quit()
            conn = None
        except FAILURES as e:
            ledger.errors.append(f"smtp {user or 'mx'}: {e!r}")
            await ledger.pause(0.5, 1)
        finally:
            if conn is not None:
                await conn.close()
        await ledger.pause(0.1, 0.5)


def _uids(untagged: list[bytes]) -> list[int]:
    for item in untagged:
        if item.startswith(b"* SEARCH"):
            return [int(x) for x in item.split()[2:]]
    return []


async def imap_op(ledger: Ledger, conn: Imap, user: str, known: list[int]) -> None:
    rng = ledger.rng
    op = rng.choices(["flags", "search", "read", "store", "append", "delete", "idle", "noop", "status"],
                     [2, 2, 3, 2, 2, 1, 2, 1, 1])[0]  # fmt: skip
    if op == "flags":
        await conn.command(b"UID FETCH 1:* (FLAGS)")
    elif op == "search":
        key = rng.choice([b"ALL", b"UNSEEN", b"SUBJECT load", b"FLAGGED", b"LARGER 10000"])
        _, untagged = await conn.command(b"UID SEARCH " + key)
        if key == b"ALL":
            known[:] = _uids(untagged)
    elif op == "read" and known:
        _, untagged = await conn.command(b"UID FETCH %d (BODY.PEEK[])" % rng.choice(known))
        for item in untagged:
            body = literal(item)
            if b" FETCH " in item and body is not None and not intact(body):
                raise ProtocolError(f"IMAP {user}: corrupted message {item[:120]!r}")
    elif op == "store" and known:
        flag = rng.choice([b"\\Seen", b"\\Flagged", b"$Label1"])
        await conn.command(b"UID STORE %d %sFLAGS (%s)" % (rng.choice(known), rng.choice([b"+", b"-"]), flag))
    elif op == "append":
        mid, data = ledger.message(user, user)
        uid = await conn.append("INBOX", data)
        ledger.delivered[(user, mid)] += 1
        known.append(uid)
    elif op == "delete" and known:
        uid = known.pop(rng.randrange(len(known)))
        _, untagged = await conn.command(b"UID FETCH %d (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])" % uid)
        header = b"".join(literal(i) or b"" for i in untagged if b" FETCH " in i)
        m = re.search(rb"<([^>]+)>", header)
        if m is None:
            return  # already expunged by another session of this user
        await conn.command(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
        await conn.command(b"UID EXPUNGE %d" % uid)
        ledger.deleted.add((user, m.group(1).decode()))
    elif op == "idle":
        await conn.idle(rng.uniform(0.2, 2.0))
    elif op == "status":
        await conn.command(b"STATUS INBOX (MESSAGES UIDNEXT UNSEEN)")
    else:
        await conn.command(b"NOOP")
    ledger.ops["imap-" + op] += 1


async def imap_client(ledger: Ledger, port: int, user: str) -> None:
    while not ledger.over():
        conn: Imap | None = None
        try:
            conn = await Imap.connect(port, user, password(user))
            if ledger.rng.random() < 0.5:
                await conn.command(b"ENABLE CONDSTORE")
            await conn.command(b"SELECT INBOX")
            known: list[int] = []
            for _ in range(ledger.rng.randint(5, 40)):
                await imap_op(ledger, conn, user, known)
                await ledger.pause(0.05, 0.4)
                if ledger.over():
                    break
            await conn.logout()
            conn = None
        except FAILURES as e:
            ledger.errors.append(f"imap {user}: {e!r}")
            await ledger.pause(0.5, 1)
        finally:
            if conn is not None:
                await conn.close()
        await ledger.pause(0.1, 0.5)


async def pop3_client(ledger: Ledger, port: int, user: str) -> None:
    rng = ledger.rng
    while not ledger.over():
        conn: Pop3 | None = None
        try:
            conn = await Pop3.connect(port, user, password(user))
            count = int((await conn.command(b"STAT")).split()[1])
            listing = (await conn.multi(b"UIDL")).splitlines()
            if len(listing) != count:
                raise ProtocolError(f"POP3 {user}: STAT {count} but UIDL lists {len(listing)}")
            marked = []
            for n in rng.sample(range(1, count + 1), min(count, rng.randint(0, 6))):
                data = await conn.multi(b"RETR %d" % n)
                if not intact(data):
                    raise ProtocolError(f"POP3 {user}: RETR {n} corrupted")
                ledger.ops["pop3-retr"] += 1
                if rng.random() < 0.5:
                    m = re.search(rb"^Message-ID: <([^>]+)>", data, re.MULTILINE | re.IGNORECASE)
                    assert m is not None
                    await conn.command(b"DELE %d" % n)
                    marked.append((user, m.group(1).decode()))
                await ledger.pause(0.02, 0.2)
            await conn.command(b"QUIT")
            ledger.deleted.update(marked)  # removed once QUIT answered +OK (RFC 1939 §6)
            ledger.ops["pop3-session"] += 1
        except FAILURES as e:
            ledger.errors.append(f"pop3 {user}: {e!r}")
        finally:
            if conn is not None:
                await conn.close()
        await ledger.pause(0.5, 2.0)


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def drive(srv: CourrielServer, ledger: Ledger) -> int:
    assert srv.proc is not None
    pid = srv.proc.pid
    peak = rss(pid)
    tasks = [asyncio.create_task(smtp_client(ledger, srv.port("smtp"), None)) for _ in range(MX_CLIENTS)]
    tasks += [asyncio.create_task(smtp_client(ledger, srv.port("submission"), IMAP_USERS[i % len(IMAP_USERS)]))
              for i in range(SUBMISSION_CLIENTS)]  # fmt: skip
    tasks += [asyncio.create_task(imap_client(ledger, srv.port("imap"), IMAP_USERS[i % len(IMAP_USERS)]))
              for i in range(IMAP_CLIENTS)]  # fmt: skip
    tasks += [asyncio.create_task(pop3_client(ledger, srv.port("pop3"), user)) for user in POP3_USERS]
    while not all(t.done() for t in tasks):
        peak = max(peak, rss(pid))
        await asyncio.wait(tasks, timeout=1.0)
    for t in tasks:
        t.result()  # a bug in a client (not a protocol error) fails here
    return max(peak, rss(pid))


async def add_users(srv: CourrielServer) -> None:
    store = await open_data(srv)
    try:
        for user in ALL_USERS:
            await store.add_user(user, password(user))
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_200_clients_for_60_seconds(tmp_path: Path) -> None:
    rng = seeded_rng()
    srv = CourrielServer(tmp_path, users={}, only=("smtp", "submission", "imap", "pop3"), plaintext_auth=True,
                         env={"COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP": "1000"})  # fmt: skip
    courriel_cmd("init", str(srv.data), "--domain", srv.domain, "--hostname", "mail." + srv.domain, env=srv.env)
    asyncio.run(add_users(srv))  # 70 users in one process (a CLI call each would take a minute)
    ledger = Ledger(rng, 0.0)
    srv.start()
    try:
        ledger.deadline = time.monotonic() + DURATION
        started = time.monotonic()
        peak = asyncio.run(drive(srv, ledger))
        elapsed = time.monotonic() - started
    finally:
        code = srv.stop()
    assert code == 0, "\n".join(srv.stderr[-20:])
    kinds = Counter(re.sub(r"\d+", "N", e)[:160] for e in ledger.errors)
    assert not ledger.errors, f"{len(ledger.errors)} protocol errors, by kind: {kinds.most_common(5)}"

    found = Counter((f.user, f.mid) for f in everything(srv) if f.mid and f.mid.startswith("load-"))
    twice = [k for k, n in found.items() if n > 1]
    assert not twice, f"stored more than once: {twice[:5]}"
    assert all(n == 1 for n in ledger.delivered.values())
    assert ledger.deleted <= set(ledger.delivered), "deleted a message never delivered"
    expected = set(ledger.delivered) - ledger.deleted
    lost = expected - set(found)
    assert not lost, f"{len(lost)} delivered messages lost, e.g. {sorted(lost)[:5]}"
    extra = set(found) - expected
    assert not extra, f"{len(extra)} messages deleted (or never acknowledged) still there: {sorted(extra)[:5]}"
    store_check(srv)
    assert peak < RSS_CEILING, f"server RSS peaked at {peak / 2**20:.0f} MB"
    ops = dict(sorted(ledger.ops.items()))
    summary(tmp_path, f"load: {MX_CLIENTS + SUBMISSION_CLIENTS + IMAP_CLIENTS + POP3_CLIENTS} clients for "
                      f"{elapsed:.0f} s, 0 errors; {len(ledger.delivered)} copies delivered, "
                      f"{len(ledger.deleted)} deleted, {len(found)} found = delivered - deleted, 0 lost; "
                      f"server peak RSS {peak / 2**20:.0f} MB; operations {ops}")  # fmt: skip
