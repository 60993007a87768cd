"""Verify the store's invariants (``courriel check-store``, and the tests after every run)."""

from __future__ import annotations

import sqlite3

from courriel.store.blobs import BlobStore


def check_invariants(c: sqlite3.Connection, blobs: BlobStore | None = None) -> list[str]:
    problems: list[str] = []
    rows = c.execute(
        "SELECT b.id, b.name, b.uidnext, b.highestmodseq, b.messages, b.unseen, b.deleted, b.size,"
        " COUNT(m.uid), COALESCE(SUM((m.flags & 1) = 0), 0), COALESCE(SUM((m.flags & 8) != 0), 0),"
        " COALESCE(SUM(m.size), 0), COALESCE(MAX(m.uid), 0), COALESCE(MAX(m.modseq), 0), u.modseq"
        " FROM mailboxes b JOIN users u ON u.id = b.user_id"
        " LEFT JOIN messages m ON m.mailbox_id = b.id GROUP BY b.id"
    ).fetchall()
    for (mid, name, uidnext, hms, n, unseen, deleted, size, cn, cunseen, cdeleted, csize, maxuid, maxms, ums) in rows:
        where = f"mailbox {mid} ({name})"
        if (n, unseen, deleted, size) != (cn, cunseen, cdeleted, csize):
            problems.append(
                f"{where}: counters {(n, unseen, deleted, size)} != actual {(cn, cunseen, cdeleted, csize)}"
            )
        if maxuid >= uidnext:
            problems.append(f"{where}: uid {maxuid} >= uidnext {uidnext}")
        if maxms > hms:
            problems.append(f"{where}: message modseq {maxms} > highestmodseq {hms}")
        if hms > ums:
            problems.append(f"{where}: highestmodseq {hms} > user modseq {ums}")
    for mid, uid in c.execute(
        "SELECT e.mailbox_id, e.uid FROM expunged e JOIN messages m USING (mailbox_id, uid)"
    ).fetchall():
        problems.append(f"mailbox {mid}: uid {uid} is both expunged and present")
    for mid, uid, uidnext in c.execute(
        "SELECT e.mailbox_id, e.uid, b.uidnext FROM expunged e JOIN mailboxes b ON b.id = e.mailbox_id"
        " WHERE e.uid >= b.uidnext"
    ).fetchall():
        problems.append(f"mailbox {mid}: expunged uid {uid} >= uidnext {uidnext}")
    for cid, refs, actual in c.execute(
        "SELECT c.id, c.refs, COUNT(m.uid) FROM contents c LEFT JOIN messages m ON m.content_id = c.id"
        " GROUP BY c.id HAVING c.refs != COUNT(m.uid)"
    ).fetchall():
        problems.append(f"content {cid}: refs {refs} != {actual} messages")
    for (mid,) in c.execute(
        "SELECT DISTINCT m.mailbox_id FROM messages m LEFT JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.id IS NULL"
    ).fetchall():
        problems.append(f"messages in missing mailbox {mid}")
    if blobs is not None:
        for cid, blob, size in c.execute("SELECT id, blob, size FROM contents").fetchall():
            try:
                actual = blobs.path(blob).stat().st_size
            except OSError:
                problems.append(f"content {cid}: file {blob} missing")
                continue
            if actual != size:
                problems.append(f"content {cid}: file {blob} has {actual} bytes, expected {size}")
    return problems
