"""The two-way synchronisation scenario that mbsync and offlineimap both run.

1. 5,000 generated messages are imported into INBOX (``courriel import``), then flags are
   set over IMAP.
2. The tool synchronises to an empty local Maildir: every message must arrive byte-identical
   (line endings aside: Maildir keeps LF) with its flags.
3. Changes on both sides: locally flags set and cleared, messages trashed (T) and removed,
   new messages written; on the server flags set, messages expunged, new ones appended.
4. The tool synchronises again: both sides must equal the state we computed, not merely
   each other; a further run must change nothing.
"""

from __future__ import annotations

import imaplib
import random
from collections.abc import Callable
from pathlib import Path

from tests.imap_interop.clients import ALICE, Clients, ok
from tests.imap_interop.corpus import (
    Mail,
    add_maildir_message,
    compare,
    corpus,
    lf,
    maildir_files,
    maildir_flags,
    maildir_view,
    message,
    message_id,
    server_view,
    set_maildir_flags,
    strip_headers,
    write_mbox,
)
from tests.imap_interop.peers import Target

N = 5000
SEEN, FLAGGED, ANSWERED, DRAFT, DELETED = "\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted"
LETTER = {SEEN: "S", FLAGGED: "F", ANSWERED: "R", DRAFT: "D", DELETED: "T"}


def mid(i: int, tag: str = "gen") -> str:
    return f"<{tag}.{i}@corpus.example.org>"


def initial_flags(i: int) -> set[str]:
    if i < 1000:
        return {SEEN}
    if i < 1100:
        return {SEEN, FLAGGED}
    if i < 1150:
        return {ANSWERED}
    if i < 1160:
        return {DRAFT}
    return set()


def two_way_sync(
    target: Target,
    clients: Clients,
    work: Path,
    sync: Callable[[], None],
    local: Path,
    strip: tuple[bytes, ...] = (),
    trash_expunges: bool = True,
) -> None:
    """Run the scenario; ``sync`` runs the tool once, ``local`` is its Maildir for INBOX.

    ``trash_expunges``: the tool expunges messages trashed locally (Maildir T) on both sides
    (mbsync with Expunge Both); otherwise T is a flag like the others, \\Deleted on the server
    (offlineimap)."""
    originals = corpus(N)
    write_mbox(work / "corpus.mbox", originals)
    target.load_mbox(ALICE, work / "corpus.mbox")
    conn = clients.login(ALICE)
    ok(conn.select("INBOX"))
    for flags, seq in (("\\Seen", "1:1100"), ("\\Flagged", "1001:1100"), ("\\Answered", "1101:1150"), ("\\Draft", "1151:1160")):
        ok(conn.store(seq, "+FLAGS.SILENT", f"({flags})"))
    ok(conn.close())

    expected = {mid(i): Mail(lf(data), frozenset(initial_flags(i))) for i, data in enumerate(originals)}
    sync()
    _check(conn, local, expected, strip, "first sync")

    # --- changes on both sides ------------------------------------------------------------
    files = {message_id(p.read_bytes()): p for p in maildir_files(local)}

    def relabel(i: int, add: frozenset[str] = frozenset(), remove: frozenset[str] = frozenset()) -> None:
        key = mid(i)
        flags = (set(maildir_flags(files[key].name)) | add) - remove
        files[key] = set_maildir_flags(files[key], "".join(LETTER[f] for f in flags))
        if DELETED in flags and trash_expunges:
            del expected[key]
        else:
            expected[key] = Mail(expected[key].data, frozenset(flags))

    for i in range(2000, 2030):
        relabel(i, add=frozenset({FLAGGED}))
    for i in range(0, 30):
        relabel(i, remove=frozenset({SEEN}))
    for i in range(2100, 2120):
        relabel(i, add=frozenset({DELETED}))  # trashed: deleted and expunged on both sides
    for i in range(2200, 2210):
        files[mid(i)].unlink()  # removed outright
        del expected[mid(i)]
    rng = random.Random(11)
    for i in range(25):
        data = message(i, rng, tag="local")
        flags = "S" if i % 2 else ""
        add_maildir_message(local, data, f"local-{i}.test", flags)
        expected[mid(i, "local")] = Mail(lf(data), frozenset({SEEN} if flags else set()))

    ok(conn.select("INBOX"))
    uids = _uids_by_mid(conn)
    for i in range(3000, 3020):
        ok(conn.uid("STORE", str(uids[mid(i)]), "+FLAGS.SILENT", "(\\Flagged)"))
        expected[mid(i)] = Mail(expected[mid(i)].data, expected[mid(i)].flags | {FLAGGED})
    for i in range(3100, 3120):
        ok(conn.uid("STORE", str(uids[mid(i)]), "+FLAGS.SILENT", "(\\Seen \\Answered)"))
        expected[mid(i)] = Mail(expected[mid(i)].data, expected[mid(i)].flags | {SEEN, ANSWERED})
    for i in range(3200, 3210):
        ok(conn.uid("STORE", str(uids[mid(i)]), "+FLAGS.SILENT", "(\\Deleted)"))
        del expected[mid(i)]
    ok(conn.expunge())
    for i in range(15):
        data = message(i, rng, tag="remote")
        ok(conn.append("INBOX", "(\\Seen)" if i % 3 == 0 else None, None, data))
        expected[mid(i, "remote")] = Mail(lf(data), frozenset({SEEN} if i % 3 == 0 else set()))
    ok(conn.close())
    assert len(expected) == N - (20 if trash_expunges else 0) - 10 - 10 + 25 + 15

    sync()
    _check(conn, local, expected, strip, "second sync")
    sync()
    _check(conn, local, expected, strip, "third sync (nothing to do)")


def _uids_by_mid(conn: imaplib.IMAP4) -> dict[str, int]:
    typ, data = conn.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK"
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(item[0].split(b"UID ")[1].split()[0])
            out[message_id(item[1])] = uid
    return out


def _check(conn: imaplib.IMAP4, local: Path, expected: dict[str, Mail], strip: tuple[bytes, ...], when: str) -> None:
    want = {k: Mail(strip_headers(v.data, strip), v.flags) for k, v in expected.items()}
    server = server_view(conn, strip=strip)
    diffs = compare(want, server)
    assert not diffs, f"{when}: server differs from the expected state:\n" + "\n".join(diffs)
    diffs = compare(want, maildir_view(local, strip=strip))
    assert not diffs, f"{when}: local Maildir differs from the expected state:\n" + "\n".join(diffs)
    ok(conn.close())
