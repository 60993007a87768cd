"""kill -9 during IMAP APPEND, MOVE and EXPUNGE from concurrent clients, then restart.

Each client works in its own two mailboxes (`cN/a`, `cN/b`, half the clients under each of two
users, so the users' MODSEQ counters and indexes are shared), appending into `a`, moving
from `a` to `b` and expunging from `b`, and keeps for every message the set of places it
may be at the end:

- an acknowledged APPEND (OK [APPENDUID v u]) is at (a, u) until a later operation moves it;
  an APPEND cut by the kill is either absent or in `a` (never twice);
- an acknowledged UID MOVE (COPYUID) puts it at (b, u') and nowhere else; a cut MOVE leaves it
  in exactly one of (a, u) and b, never both, never neither;
- an acknowledged UID EXPUNGE removes it; a cut one leaves it at (b, u) or removes it.

After each restart every client checks that UIDVALIDITY did not change and that UIDNEXT is
above every UID it was given before the kill (UIDs never reused). At the end the store is
read directly: every message is where its set allows, at most once, byte-intact, and
`courriel store check` finds the invariants intact.
"""

from __future__ import annotations

import imaplib
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness import CourrielServer
from tests.reliability.common import (
    everything,
    intact,
    mailbox_states,
    make_message,
    seeded_rng,
    store_check,
    summary,
)

CLIENTS = 6
KILLS = 5
USERS = {"alice@example.test": "alice-pw", "bob@example.test": "bob-pw"}
ANY = 0  # "any UID" in a place: the UID of an operation cut before its reply is unknown
Place = tuple[str, int] | None  # (mailbox, UID), or None: expunged / never stored
CUT = (imaplib.IMAP4.abort, OSError)


@dataclass
class Client:
    index: int
    user: str
    password: str
    rng: random.Random
    places: dict[str, set[Place]] = field(default_factory=dict)
    in_a: list[tuple[str, int]] = field(default_factory=list)  # (message id, UID) surely in a
    in_b: list[tuple[str, int]] = field(default_factory=list)
    max_uid: dict[str, int] = field(default_factory=dict)
    uidvalidity: dict[str, int] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=lambda: {"append": 0, "move": 0, "expunge": 0})
    cut: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def boxes(self) -> tuple[str, str]:
        return f"c{self.index}/a", f"c{self.index}/b"


def _code(conn: imaplib.IMAP4, name: str) -> list[int]:
    _, data = conn.response(name)
    raw = data[-1] if data and data[-1] is not None else b""
    return [int(x) for x in re.findall(rb"\d+", raw)] if isinstance(raw, bytes) else []


def _connect(client: Client, srv: CourrielServer) -> imaplib.IMAP4:
    conn = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=30)
    conn.login(client.user, client.password)
    for box in client.boxes:
        typ, data = conn.status(box, "(UIDNEXT UIDVALIDITY)")
        m = re.search(rb"UIDNEXT (\d+) UIDVALIDITY (\d+)", data[0] or b"")
        if typ != "OK" or m is None:
            client.errors.append(f"STATUS {box}: {typ} {data!r}")
            continue
        uidnext, validity = int(m.group(1)), int(m.group(2))
        if client.uidvalidity.setdefault(box, validity) != validity:
            client.errors.append(f"{box}: UIDVALIDITY changed {client.uidvalidity[box]} -> {validity}")
        if uidnext <= client.max_uid.get(box, 0):
            client.errors.append(f"{box}: UIDNEXT {uidnext} not above UID {client.max_uid[box]} seen before")
    return conn


def _select(conn: imaplib.IMAP4, box: str, selected: list[str]) -> None:
    if selected != [box]:
        typ, data = conn.select(box)
        if typ != "OK":
            raise AssertionError(f"SELECT {box}: {data!r}")
        selected[:] = [box]


def _uid_given(client: Client, box: str, validity: int, uid: int, what: str) -> None:
    if validity != client.uidvalidity.get(box, validity):
        client.errors.append(f"{what}: UIDVALIDITY {validity} in {box}")
    if uid <= client.max_uid.get(box, 0):
        client.errors.append(f"{what}: UID {uid} in {box} not above {client.max_uid[box]}")
    client.max_uid[box] = max(uid, client.max_uid.get(box, 0))


def step(client: Client, conn: imaplib.IMAP4, selected: list[str], serial: list[int]) -> None:
    """One operation; an exception from the connection leaves the places recorded as cut."""
    a, b = client.boxes
    roll = client.rng.random()
    if roll < 0.5 or not (client.in_a or client.in_b):
        serial[0] += 1
        mid = f"crash-imap-{client.index}-{serial[0]}@example.test"
        data = make_message(mid, client.user, client.user, client.rng, size=client.rng.randint(200, 3000))
        client.places[mid] = {None, (a, ANY)}
        typ, resp = conn.append(a, None, None, data)
        if typ != "OK":
            client.errors.append(f"APPEND {mid}: {resp!r}")
            return
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", resp[-1] or b"")
        if m is None:
            client.errors.append(f"APPEND {mid}: no APPENDUID in {resp!r}")
            return
        uid = int(m.group(2))
        _uid_given(client, a, int(m.group(1)), uid, f"APPEND {mid}")
        client.places[mid] = {(a, uid)}
        client.in_a.append((mid, uid))
        client.acked["append"] += 1
    elif roll < 0.75 and client.in_a:
        mid, uid = client.in_a.pop(client.rng.randrange(len(client.in_a)))
        client.places[mid] = {(a, uid), (b, ANY)}
        _select(conn, a, selected)
        conn.response("COPYUID")  # forget any earlier one
        typ, resp = conn.uid("MOVE", str(uid), b)
        copyuid = _code(conn, "COPYUID")
        if typ != "OK" or len(copyuid) != 3 or copyuid[1] != uid:
            client.errors.append(f"MOVE {mid} {uid}: {typ} {resp!r} COPYUID {copyuid}")
            return
        _uid_given(client, b, copyuid[0], copyuid[2], f"MOVE {mid}")
        client.places[mid] = {(b, copyuid[2])}
        client.in_b.append((mid, copyuid[2]))
        client.acked["move"] += 1
    elif client.in_b:
        mid, uid = client.in_b.pop(client.rng.randrange(len(client.in_b)))
        client.places[mid] = {(b, uid), None}
        _select(conn, b, selected)
        typ, resp = conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        if typ == "OK":
            typ, resp = conn.uid("EXPUNGE", str(uid))
        if typ != "OK":
            client.errors.append(f"EXPUNGE {mid} {uid}: {resp!r}")
            return
        client.places[mid] = {None}
        client.acked["expunge"] += 1


def run_client(client: Client, srv: CourrielServer, stop: threading.Event, done: list[int]) -> None:
    conn: imaplib.IMAP4 | None = None
    selected: list[str] = []
    serial = [0]
    deadline = time.monotonic() + 240
    while not stop.is_set() and not client.errors and time.monotonic() < deadline:
        stepping = False
        try:
            if conn is None:
                conn = _connect(client, srv)
                selected = []
            stepping = True
            step(client, conn, selected, serial)
            done[0] += 1
        except CUT:
            client.cut += stepping
            if conn is not None:
                try:
                    conn.shutdown()
                except OSError:
                    pass
            conn = None
            time.sleep(0.02)
        except Exception as e:  # anything else is a failure of the test, reported as such
            client.errors.append(f"client {client.index}: {e!r}")
    if conn is not None:
        try:
            conn.logout()
        except (*CUT, imaplib.IMAP4.error):
            pass


@pytest.mark.slow
@pytest.mark.timeout(600)  # 10-40 s alone; generous for a loaded 2-core machine
def test_kill_9_during_imap_append_move_expunge(tmp_path: Path) -> None:
    rng = seeded_rng()
    srv = CourrielServer(tmp_path, users=USERS, only=("imap",), plaintext_auth=True)
    users = list(USERS.items())
    clients = [Client(i, *users[i % len(users)], random.Random(rng.random())) for i in range(CLIENTS)]
    stop = threading.Event()
    done = [0]
    kills: list[int] = []
    srv.start()
    try:
        for c in clients:
            with imaplib.IMAP4("127.0.0.1", srv.port("imap")) as setup:
                setup.login(c.user, c.password)
                for box in c.boxes:
                    assert setup.create(box)[0] == "OK"
        threads = [threading.Thread(target=run_client, args=(c, srv, stop, done), daemon=True) for c in clients]
        for t in threads:
            t.start()
        for _ in range(KILLS + 1):
            # Let the clients do some work, then kill at a random moment of it.
            target = done[0] + rng.randint(100, 300)
            while done[0] < target and all(t.is_alive() for t in threads):
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.2))
            if len(kills) == KILLS:
                break
            srv.kill()
            kills.append(done[0])
            srv.start()
        stop.set()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "clients did not finish"
    finally:
        stop.set()
        srv.stop()
    errors = [e for c in clients for e in c.errors]
    log = [line for line in srv.stderr if "WARNING" in line or "ERROR" in line or "failed" in line]
    assert not errors, f"{errors[:10]}; server log: {log[-10:]}"

    found = everything(srv)
    where: dict[str, list[tuple[str, int]]] = {}
    for f in found:
        if f.mailbox.startswith("c"):
            assert f.mid is not None and intact(f.data), f"{f.mailbox} {f.uid}: corrupted"
            where.setdefault(f.mid, []).append((f.mailbox, f.uid))
    places = {mid: allowed for c in clients for mid, allowed in c.places.items()}
    assert set(where) <= set(places), f"unknown messages: {sorted(set(where) - set(places))[:5]}"
    for mid, allowed in places.items():
        seen = where.get(mid, [])
        assert len(seen) <= 1, f"{mid} stored {len(seen)} times: {seen} (allowed {allowed})"
        if not seen:
            assert None in allowed, f"{mid} lost (allowed {allowed})"
        else:
            box, uid = seen[0]
            assert (box, uid) in allowed or (box, ANY) in allowed, f"{mid} at {seen[0]}, allowed {allowed}"
    # UIDs never reused: each mailbox kept its UIDVALIDITY, and its UIDNEXT is above every UID
    # ever handed out in it.
    states = mailbox_states(srv)
    for c in clients:
        for box in c.boxes:
            validity, uidnext = states[(c.user, box)]
            assert validity == c.uidvalidity[box] and uidnext > c.max_uid.get(box, 0), (box, validity, uidnext)
    store_check(srv)
    acked = {k: sum(c.acked[k] for c in clients) for k in ("append", "move", "expunge")}
    cut = sum(c.cut for c in clients)
    assert len(kills) == KILLS and all(acked.values())
    summary(tmp_path, f"crash-imap: {KILLS} kills survived ({cut} operations cut), acknowledged {acked}, "
                      f"{len(found)} messages at the end, 0 lost, 0 duplicated")  # fmt: skip
