"""kill -9 during SMTP delivery: 20 clients send 2,000 messages to the MX while the server is
killed at random moments and restarted on the same data directory.

The rule checked at the end (RFC 5321 §6.1: the server owns a message once it has sent the
250; a client that lost the connection before reading it must send again):

- a message acknowledged at its first attempt is stored exactly once;
- a message that needed k attempts (the earlier ones cut by a kill) is stored at least once
  and at most k times: an earlier attempt may have been committed with its 250 lost;
- a message to two users (a quarter of them: one delivery, all or none) has the same number
  of copies in both INBOXes;
- every stored copy is byte-intact (the message as sent is the stored bytes after the
  trace headers the server prepends; the body matches its X-Body-SHA256), sits in the
  addressed user's INBOX, and `courriel store check` finds the invariants intact.
"""

from __future__ import annotations

import random
import smtplib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness import CourrielServer
from tests.reliability.common import (
    everything,
    intact,
    make_message,
    seeded_rng,
    store_check,
    summary,
)

CLIENTS = 20
TOTAL = 2000
KILLS = 4
RECIPIENTS = ["alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test"]
TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError, OSError)


@dataclass
class Client:
    """One sender: its messages in order, what it was told about each."""

    index: int
    messages: list[tuple[str, list[str], bytes]]  # (message id, recipients, bytes)
    attempts: Counter[str] = field(default_factory=Counter)
    acked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)  # anything but a cut connection


def run_client(client: Client, srv: CourrielServer, acked_total: list[int], lock: threading.Lock) -> None:
    try:
        _send_all(client, srv, acked_total, lock)
    except Exception as e:  # anything unexpected is a failure of the test, reported as such
        client.errors.append(f"client {client.index}: {e!r}")


def _send_all(client: Client, srv: CourrielServer, acked_total: list[int], lock: threading.Lock) -> None:
    rng = random.Random(client.index)
    conn: smtplib.SMTP | None = None
    sent_on_conn = 0
    per_conn = rng.randint(1, 30)
    deadline = time.monotonic() + 240
    for mid, rcpts, data in client.messages:
        while time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname="client.test", timeout=30)
                    conn.ehlo("client.test")
                    sent_on_conn, per_conn = 0, rng.randint(1, 30)
                client.attempts[mid] += 1
                conn.sendmail("sender@remote.test", rcpts, data)
            except smtplib.SMTPResponseException as e:
                if e.smtp_code >= 500:
                    client.errors.append(f"{mid}: {e.smtp_code} {e.smtp_error!r}")
                    return
                _drop(conn)
                conn = None  # a 4xx: try again on a new connection
            except smtplib.SMTPRecipientsRefused as e:
                client.errors.append(f"{mid}: recipient refused {e.recipients!r}")
                return
            except TRANSIENT:
                _drop(conn)
                conn = None  # the server died under us (or is restarting): retry
                time.sleep(0.02)
            else:
                client.acked.add(mid)
                with lock:
                    acked_total[0] += 1
                sent_on_conn += 1
                if sent_on_conn >= per_conn:
                    _quit(conn)
                    conn = None
                break
        else:
            client.errors.append(f"{mid}: gave up (server unreachable)")
            return
    _quit(conn)


def _drop(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except OSError:
            pass


def _quit(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()


@pytest.mark.slow
@pytest.mark.timeout(600)  # 10-40 s alone; generous for a loaded 2-core machine
def test_kill_9_during_smtp_delivery(tmp_path: Path) -> None:
    rng = seeded_rng()
    users = {address: "pw-" + address for address in RECIPIENTS}
    srv = CourrielServer(tmp_path, users=users, only=("smtp",))
    originals: dict[str, tuple[list[str], bytes]] = {}
    clients = [Client(i, []) for i in range(CLIENTS)]
    for n in range(TOTAL):
        mid = f"crash-smtp-{n}@remote.test"
        # A quarter go to two users: one delivery for both, all or none.
        rcpts = rng.sample(RECIPIENTS, 2 if rng.random() < 0.25 else 1)
        data = make_message(mid, "sender@remote.test", rcpts[0], rng)
        originals[mid] = (rcpts, data)
        clients[n % CLIENTS].messages.append((mid, rcpts, data))
    # Kill when these many messages have been acknowledged (spread over the run), after a
    # further random delay so the kill lands at an arbitrary point of a transaction.
    marks = sorted(rng.randint(TOTAL // 10, TOTAL * 9 // 10) for _ in range(KILLS))
    acked_total = [0]
    lock = threading.Lock()
    kills: list[int] = []
    srv.start()
    try:
        threads = [threading.Thread(target=run_client, args=(c, srv, acked_total, lock), daemon=True) for c in clients]
        for t in threads:
            t.start()
        for mark in marks:
            while acked_total[0] < mark and any(t.is_alive() for t in threads):
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            srv.kill()
            kills.append(acked_total[0])
            srv.start()
        for t in threads:
            t.join(300)
        assert not any(t.is_alive() for t in threads), "clients did not finish"
    finally:
        srv.stop()

    errors = [e for c in clients for e in c.errors]
    assert not errors, errors[:10]
    attempts: Counter[str] = Counter()
    acked: set[str] = set()
    for c in clients:
        attempts.update(c.attempts)
        acked |= c.acked
    assert acked == set(originals), f"not acknowledged: {len(set(originals) - acked)}"

    found = everything(srv)
    per_user = Counter((f.user, f.mid) for f in found)
    counts: Counter[str] = Counter()
    for mid, (rcpts, _) in originals.items():
        copies = {per_user[(rcpt, mid)] for rcpt in rcpts}
        assert len(copies) == 1, f"{mid}: recipients got different numbers of copies {copies} (not all-or-none)"
        counts[mid] = copies.pop()
    unknown = {f.mid for f in found} - set(originals)
    assert not unknown, f"unknown messages: {unknown}"
    lost = [mid for mid in acked if counts[mid] == 0]
    assert not lost, f"acknowledged but lost: {len(lost)} e.g. {lost[:5]}"
    once = [mid for mid in acked if attempts[mid] == 1 and counts[mid] != 1]
    assert not once, f"acknowledged at the first attempt but stored {[counts[m] for m in once[:5]]} times: {once[:5]}"
    over = [mid for mid in acked if counts[mid] > attempts[mid]]
    assert not over, f"more copies than attempts: {over[:5]}"
    for f in found:
        assert f.mid is not None
        rcpts, data = originals[f.mid]
        assert f.user in rcpts and f.mailbox == "INBOX", f"{f.mid} in {f.user} {f.mailbox}"
        assert f.data.endswith(data) and intact(f.data), f"{f.mid} corrupted"
    store_check(srv)
    retried = sum(1 for mid in acked if attempts[mid] > 1)
    duplicates = sum(n - 1 for n in counts.values())
    assert len(kills) == KILLS
    summary(tmp_path, f"crash-smtp: {KILLS} kills survived (at {kills} acknowledged), {TOTAL} acknowledged, "
                      f"0 lost, {retried} resent after a cut connection, {duplicates} stored twice "
                      f"(committed before the 250 was read)")  # fmt: skip
