"""Write tests/store/schemas/vN/ from the current code: run once per new schema version.

    python -m tests.store.make_schema_fixture

It builds a small store (domains, users, aliases, mailboxes, messages with flags, a copy,
an expunge), then saves an SQL dump of the database, its message files and what a reader
must find in it (expected.json). Commit the new folder; never change an old one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

from courriel.store.api import INBOX, Flag, FlagMode
from courriel.store.sqlite.db import migrations
from tests.conftest import StoreRunner

HERE = Path(__file__).parent / "schemas"

MESSAGES = [
    b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: one\r\n\r\nfirst\r\n",
    "From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\nTo: alice@example.test\r\nSubject: =?utf-8?q?zw=C3=B6lf?=\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "\r\nGrüße\r\n--b\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n"
    "\r\nAAEC\r\n--b--\r\n".encode(),
    b"Subject: three\r\n\r\nthird\r\n",
]


def expected_state(r: StoreRunner) -> dict[str, object]:
    s = r.store
    users = {}
    for u in r.run(s.list_users()):
        boxes = {}
        for m in r.run(s.list_mailboxes(u.id)):
            recs = r.run(s.get_records(m.id, [i.uid for i in r.run(s.list_messages(m.id))]))
            boxes[m.name] = {
                "uidvalidity": m.uidvalidity,
                "uidnext": m.uidnext,
                "messages": {
                    str(rec.info.uid): [
                        hashlib.sha256(r.run(s.read_message(rec.blob))).hexdigest(),
                        sorted(rec.info.flags.names()),
                        sorted(rec.info.keywords),
                    ]
                    for rec in recs
                },
            }
        users[u.address] = boxes
    aliases = {a.address: list(a.targets) for a in r.run(s.list_aliases())}
    return {"users": users, "aliases": aliases}


def build(root: Path) -> dict[str, object]:
    r = StoreRunner(root)
    try:
        s = r.store
        r.run(s.add_domain("example.test"))
        alice = r.run(s.add_user("alice@example.test", "alice-pw"))
        r.run(s.add_user("bob@example.test", "bob-pw", quota_bytes=10_000_000))
        r.run(s.add_alias("postmaster@example.test", ["alice@example.test"]))
        r.run(s.add_alias("@example.test", ["bob@example.test", "ext@remote.test"]))
        inbox = r.run(s.get_mailbox(alice.id, INBOX))
        assert inbox is not None
        for i, m in enumerate(MESSAGES):
            r.run(s.append(inbox.id, m, Flag.SEEN if i else Flag(0), frozenset({"$Work"}) if i == 1 else frozenset()))
        work = r.run(s.create_mailbox(alice.id, "Work/2026"))
        r.run(s.copy(inbox.id, [1, 2], work.id))
        r.run(s.store_flags(inbox.id, [3], FlagMode.ADD, Flag.DELETED))
        r.run(s.expunge(inbox.id))
        return expected_state(r)
    finally:
        r.close()


def main() -> None:
    version = migrations()[-1][0]
    out = HERE / f"v{version}"
    if out.exists():
        raise SystemExit(f"{out} exists: fixtures of released schemas never change")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        expected = build(root)
        conn = sqlite3.connect(root / "courriel.db")
        # A virtual table's rows live in its shadow tables, which the dump restores; the
        # dump's INSERTs into the virtual table itself cannot run (its schema row is written
        # with writable_schema and not loaded yet), so they are left out.
        virtual = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%'")]
        dump = "\n".join(s for s in conn.iterdump() if not s.startswith(tuple(f'INSERT INTO "{v}" ' for v in virtual)))
        conn.close()
        out.mkdir(parents=True)
        (out / "dump.sql").write_text(f"PRAGMA user_version = {version};\n{dump}\n", encoding="utf-8")
        shutil.copytree(root / "blobs", out / "blobs")
        (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
