"""A data directory made by every earlier schema version opens and upgrades itself."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from courriel.auth.passwords import verify
from courriel.store.sqlite.db import connect, migrate, migrations, schema_version
from tests.conftest import StoreRunner
from tests.store.make_schema_fixture import HERE, expected_state

FIXTURES = sorted(HERE.glob("v*"), key=lambda p: int(p.name[1:]))


def test_there_is_a_fixture_for_every_schema_version() -> None:
    assert [int(p.name[1:]) for p in FIXTURES] == [v for v, _ in migrations()]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_old_data_directory_upgrades(fixture: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "courriel.db")
    conn.executescript((fixture / "dump.sql").read_text(encoding="utf-8"))
    conn.close()
    shutil.copytree(fixture / "blobs", tmp_path / "blobs")
    r = StoreRunner(tmp_path)  # opening migrates
    try:
        conn = connect(tmp_path / "courriel.db")
        assert schema_version(conn) == migrations()[-1][0]
        conn.close()
        assert r.run(r.store.check()) == []
        assert expected_state(r) == json.loads((fixture / "expected.json").read_text())
        cred = r.run(r.store.get_credentials("alice@example.test"))
        assert cred is not None and cred.password_hash and verify(cred.password_hash, "alice-pw")
        # and it keeps working: a new message gets the next UID
        user = r.run(r.store.get_user("alice@example.test"))
        assert user is not None
        inbox = r.run(r.store.get_mailbox(user.id, "INBOX"))
        assert inbox is not None
        a = r.run(r.store.append(inbox.id, b"Subject: after upgrade\r\n\r\nhi\r\n"))
        assert a.uid == inbox.uidnext
    finally:
        r.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db")
    migrate(conn)
    conn.execute("PRAGMA user_version = 9999")
    with pytest.raises(RuntimeError, match="newer"):
        migrate(conn)
    conn.close()
