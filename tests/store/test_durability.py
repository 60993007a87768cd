"""Nothing acknowledged is lost: SIGKILL a process appending messages at random moments."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from courriel.store.api import INBOX
from tests.conftest import BACKENDS, StoreRunner

ROOT = Path(__file__).resolve().parents[2]


def _acks(raw: bytes) -> dict[int, str]:
    acks = {}
    for line in raw.split(b"\n")[:-1]:  # the last piece may be a partial line
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"ACK":
            acks[int(parts[1])] = parts[2].decode()
    return acks


def _run_and_kill(
    root: Path, writers: int, wait: float, dsn: str | None = None, crash: Callable[[], None] | None = None
) -> dict[int, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store.durability_child", str(root), str(writers), *([dsn] if dsn else [])],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert child.stdout is not None
    # Wait until the child is really appending, then let it run a random while.
    first = child.stdout.readline()
    assert first.startswith(b"ACK"), first
    time.sleep(wait)
    os.kill(child.pid, signal.SIGKILL)
    if crash is not None:
        crash()
    rest = child.stdout.read()
    child.stdout.close()
    child.wait()
    return _acks(first + rest)


def test_kill_9_during_appends(tmp_path: Path) -> None:
    _kill_rounds(tmp_path, "sqlite")


@pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL not in COURRIEL_TEST_BACKENDS")
def test_kill_9_during_appends_postgres(tmp_path: Path) -> None:
    """The appending client is killed and the PostgreSQL server stopped as by a crash (no
    checkpoint: WAL recovery at restart) at random moments; every acknowledged APPEND is
    there afterwards, whole."""
    from tests.pg import cluster

    pg = cluster()
    dsn = pg.fresh_dsn()
    try:
        _kill_rounds(tmp_path, "postgres", dsn, pg.crash_and_restart, rounds=2)
    finally:
        pg.drop(dsn)


def _kill_rounds(
    tmp_path: Path, backend: str, dsn: str | None = None, crash: Callable[[], None] | None = None, rounds: int = 5
) -> None:
    setup = StoreRunner(tmp_path, backend, dsn)
    setup.run(setup.store.add_domain("example.test"))
    user = setup.run(setup.store.add_user("u@example.test", "pw"))
    setup.close()
    rng = random.Random(int(os.environ.get("COURRIEL_TEST_SEED", "0")) or None)
    acked: dict[int, str] = {}
    for round_ in range(rounds):
        new = _run_and_kill(tmp_path, rng.choice([1, 8, 20]), rng.uniform(0.05, 0.8), dsn, crash)
        assert new, f"round {round_}: nothing acknowledged"
        assert not set(new) & set(acked), "a UID was reused after a crash"
        acked.update(new)
        r = StoreRunner(tmp_path, backend, dsn)
        try:
            inbox = r.run(r.store.get_mailbox(user.id, INBOX))
            assert inbox is not None
            records = {rec.info.uid: rec for rec in r.run(r.store.get_records(inbox.id, list(acked)))}
            missing = set(acked) - set(records)
            assert not missing, f"round {round_}: acknowledged but lost: {sorted(missing)[:10]}"
            for uid, digest in acked.items():
                data = r.run(r.store.read_message(records[uid].blob))
                assert hashlib.sha256(data).hexdigest() == digest, f"uid {uid} corrupted"
            # every visible message, acknowledged or not, is whole
            for info in r.run(r.store.list_messages(inbox.id)):
                (rec,) = r.run(r.store.get_records(inbox.id, [info.uid]))
                data = r.run(r.store.read_message(rec.blob))
                head, _, body = data.partition(b"\r\n\r\n")
                check = [h for h in head.split(b"\r\n") if h.startswith(b"X-Check: ")]
                assert check and check[0][9:].decode() == hashlib.sha256(body).hexdigest()
            assert r.run(r.store.check()) == []
        finally:
            r.close()
