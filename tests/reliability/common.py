"""Shared pieces of the reliability tests: messages that carry their own identity and
checksum, a look at everything the store holds (read directly, with the server stopped),
the store's invariant check, and a summary line per test.

A test message has a unique ``Message-ID`` and an ``X-Body-SHA256`` header with the SHA-256
of its body, so any copy found later can be named and verified without the sender's notes,
whatever trace headers the server prepended.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

from courriel.config import load_config
from courriel.store import open_store
from courriel.store.api import Store
from tests.harness import CourrielServer

_MESSAGE_ID = re.compile(rb"^Message-ID: <([^>\r\n]+)>\r?$", re.IGNORECASE | re.MULTILINE)
_BODY_SUM = re.compile(rb"^X-Body-SHA256: ([0-9a-f]{64})\r?$", re.IGNORECASE | re.MULTILINE)


def seeded_rng() -> random.Random:
    """COURRIEL_TEST_SEED replays a run; otherwise every run picks other kill moments."""
    seed = int(os.environ.get("COURRIEL_TEST_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
    print(f"reliability seed {seed} (COURRIEL_TEST_SEED={seed} replays it)")
    return random.Random(seed)


def make_message(mid: str, sender: str, to: str, rng: random.Random, size: int = 0) -> bytes:
    """A message named ``<mid>``, its body of random printable lines (CRLF, some starting
    with a dot to exercise dot-stuffing), its body checksum in a header."""
    size = size or rng.randint(200, 6000)
    lines = []
    total = 0
    while total < size:
        line = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789 .,-", k=rng.randint(0, 76)))
        if rng.random() < 0.05:
            line = "." + line
        lines.append(line)
        total += len(line) + 2
    body = ("\r\n".join(lines) + "\r\n").encode()
    head = (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: reliability {mid}\r\n"
        f"Date: Sun, 29 Nov 2026 00:00:00 +0000\r\nMessage-ID: <{mid}>\r\n"
        f"X-Body-SHA256: {hashlib.sha256(body).hexdigest()}\r\n\r\n"
    ).encode()
    return head + body


def message_id(data: bytes) -> str | None:
    m = _MESSAGE_ID.search(data.partition(b"\r\n\r\n")[0])
    return m.group(1).decode() if m else None


def intact(data: bytes) -> bool:
    """The body's checksum matches the one the sender wrote in the header."""
    head, sep, body = data.partition(b"\r\n\r\n")
    m = _BODY_SUM.search(head)
    return bool(sep and m and hashlib.sha256(body).hexdigest() == m.group(1).decode())


@dataclass(frozen=True)
class Found:
    user: str
    mailbox: str
    uidvalidity: int
    uid: int
    mid: str | None
    data: bytes


async def open_data(srv: CourrielServer) -> Store:
    """The server's store as its configuration names it (whichever backend), opened here."""
    return await open_store(load_config(srv.data, env=srv.env))


async def _everything(srv: CourrielServer) -> list[Found]:
    store = await open_data(srv)
    try:
        found = []
        for user in await store.list_users():
            for box in await store.list_mailboxes(user.id):
                infos = await store.list_messages(box.id)
                uids = [i.uid for i in infos]
                contents = await store.read_messages(box.id, uids) if uids else {}
                for uid in uids:
                    raw = contents.get(uid)
                    assert raw is not None, f"{user.address} {box.name} UID {uid}: message file missing"
                    found.append(Found(user.address, box.name, box.uidvalidity, uid, message_id(raw), raw))
        return found
    finally:
        await store.close()


def everything(srv: CourrielServer) -> list[Found]:
    """Every message of every mailbox of every user (the server must be stopped)."""
    return asyncio.run(_everything(srv))


async def _mailbox_states(srv: CourrielServer) -> dict[tuple[str, str], tuple[int, int]]:
    store = await open_data(srv)
    try:
        return {
            (user.address, box.name): (box.uidvalidity, box.uidnext)
            for user in await store.list_users()
            for box in await store.list_mailboxes(user.id)
        }
    finally:
        await store.close()


def mailbox_states(srv: CourrielServer) -> dict[tuple[str, str], tuple[int, int]]:
    """(user, mailbox) -> (UIDVALIDITY, UIDNEXT), read from the store (server stopped)."""
    return asyncio.run(_mailbox_states(srv))


def store_check(srv: CourrielServer) -> None:
    """`courriel store check`: the invariants of store/api.py hold."""
    proc = srv.cli("store", "check")
    assert "store is sound" in proc.stdout, proc.stdout + proc.stderr


def summary(tmp_path: Path, line: str) -> None:
    """Print the test's figures (shown by pytest -s and in -rA) and keep them beside its data."""
    print(line)
    with open(tmp_path / "reliability-summary.txt", "a") as fh:
        fh.write(line + "\n")
