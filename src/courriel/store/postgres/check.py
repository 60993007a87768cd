"""Verify the store's invariants on PostgreSQL (``courriel store check``, and the tests)."""

from __future__ import annotations

from courriel.store.blobs import BlobStore
from courriel.store.postgres.db import Tx


async def check_invariants(tx: Tx, files: BlobStore | None = None) -> list[str]:
    problems: list[str] = []
    rows = await tx.all(
        "SELECT b.id, b.name, b.uidnext, b.highestmodseq, b.messages, b.unseen, b.deleted, b.size,"
        " COUNT(m.uid), COUNT(m.uid) FILTER (WHERE (m.flags & 1) = 0), COUNT(m.uid) FILTER (WHERE (m.flags & 8) != 0),"
        " COALESCE(SUM(m.size), 0), COALESCE(MAX(m.uid), 0), COALESCE(MAX(m.modseq), 0), u.modseq"
        " FROM mailboxes b JOIN users u ON u.id = b.user_id"
        " LEFT JOIN messages m ON m.mailbox_id = b.id GROUP BY b.id, u.modseq"
    )
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
    for mid, uid in await tx.all(
        "SELECT e.mailbox_id, e.uid FROM expunged e JOIN messages m USING (mailbox_id, uid)"
    ):
        problems.append(f"mailbox {mid}: uid {uid} is both expunged and present")
    for mid, uid, uidnext in await tx.all(
        "SELECT e.mailbox_id, e.uid, b.uidnext FROM expunged e JOIN mailboxes b ON b.id = e.mailbox_id"
        " WHERE e.uid >= b.uidnext"
    ):
        problems.append(f"mailbox {mid}: expunged uid {uid} >= uidnext {uidnext}")
    for cid, refs, actual in await tx.all(
        "SELECT c.id, c.refs, COUNT(m.uid) FROM contents c LEFT JOIN messages m ON m.content_id = c.id"
        " GROUP BY c.id HAVING c.refs != COUNT(m.uid)"
    ):
        problems.append(f"content {cid}: refs {refs} != {actual} messages")
    for (mid,) in await tx.all(
        "SELECT DISTINCT m.mailbox_id FROM messages m LEFT JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.id IS NULL"
    ):
        problems.append(f"messages in missing mailbox {mid}")
    if files is None:
        for cid, blob, size, actual in await tx.all(
            "SELECT c.id, c.blob, c.size, octet_length(d.data) FROM contents c"
            " LEFT JOIN blob_data d ON d.blob = c.blob WHERE d.blob IS NULL OR octet_length(d.data) != c.size"
        ):
            if actual is None:
                problems.append(f"content {cid}: data {blob} missing")
            else:
                problems.append(f"content {cid}: data {blob} has {actual} bytes, expected {size}")
    else:
        for cid, blob, size in await tx.all("SELECT id, blob, size FROM contents"):
            try:
                actual = files.path(blob).stat().st_size
            except OSError:
                problems.append(f"content {cid}: file {blob} missing")
                continue
            if actual != size:
                problems.append(f"content {cid}: file {blob} has {actual} bytes, expected {size}")
    return problems
