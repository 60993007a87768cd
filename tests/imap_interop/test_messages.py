"""imaplib: APPEND (flags, internal date, APPENDUID), CHECK, STORE (+FLAGS, -FLAGS, FLAGS,
.SILENT), COPY (COPYUID), MOVE (RFC 6851), EXPUNGE, UID EXPUNGE (RFC 4315), CLOSE,
UNSELECT (RFC 3691) and the UID forms (RFC 9051 §6.3.12, §6.4)."""

from __future__ import annotations

import imaplib
import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.imap_interop.clients import (
    ALICE,
    BOB,
    Clients,
    capabilities,
    fetch,
    need_cap,
    ok,
    untagged,
)
from tests.imap_interop.peers import Target


def _msg(i: int, extra: str = "") -> bytes:
    return f"From: x@example.org\r\nSubject: m{i}\r\nMessage-ID: <m{i}.{extra}@example.org>\r\n\r\nbody {i}\r\n".encode()


def _fill(conn: imaplib.IMAP4, mailbox: str, n: int) -> list[int]:
    """APPEND n messages, returning their UIDs from APPENDUID."""
    ok(conn.create(mailbox))
    uids = []
    for i in range(n):
        typ, data = conn.append(mailbox, None, None, _msg(i, mailbox))
        assert typ == "OK"
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
        assert m, data
        uids.append(int(m.group(2)))
    return uids


def _flags(conn: imaplib.IMAP4, seq: str = "1:*") -> dict[int, set[str]]:
    """FLAGS by message number, without the session-dependent \\Recent."""
    return {n: {f.decode() for f in v[b"FLAGS"]} - {"\\Recent"} for n, v in fetch(conn, seq, "(FLAGS)").items()}


def replay_expunges(uids: list[int], expunges: list[int]) -> list[int]:
    """Apply EXPUNGE responses in order: each number counts the messages left (§7.5.1)."""
    left = list(uids)
    for n in expunges:
        del left[n - 1]
    return left


def test_append_flags_date_appenduid(target: Target, clients: Clients) -> None:
    conn = clients.login()
    need_cap(target, capabilities(conn), "UIDPLUS")
    ok(conn.create("Ap"))
    when = datetime(2024, 2, 29, 13, 14, 15, tzinfo=timezone(timedelta(hours=-7)))
    msg = b"From: a@example.org\r\nSubject: appended\r\n\r\nThe body.\r\n"
    typ, data = conn.append("Ap", "(\\Flagged \\Seen $Forwarded custom-kw)", imaplib.Time2Internaldate(when), msg)
    assert typ == "OK"
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert m, data
    uidvalidity, uid = int(m.group(1)), int(m.group(2))
    ok(conn.select("Ap"))
    assert int(untagged(conn, "UIDVALIDITY")[0]) == uidvalidity
    got = fetch(conn, "1", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")[1]
    assert got[b"UID"] == uid
    assert {f.decode().lower() for f in got[b"FLAGS"]} - {"\\recent"} == {"\\flagged", "\\seen", "$forwarded", "custom-kw"}
    assert got[b"RFC822.SIZE"] == len(msg) and got[b"BODY[]"] == msg
    stamp = got[b"INTERNALDATE"].decode()
    assert datetime.strptime(stamp, "%d-%b-%Y %H:%M:%S %z") == when
    # §6.3.12: to a mailbox that does not exist, NO [TRYCREATE]
    typ, data = conn.append("Nope-Not-There", None, None, msg)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    # an APPEND to the selected mailbox shows up as EXISTS
    ok(conn.append("Ap", None, None, msg))
    ok(conn.noop())
    assert b"2" in untagged(conn, "EXISTS")
    ok(conn.check())  # §6.4.1 (IMAP4rev1): CHECK is a NOOP-like checkpoint
    with pytest.raises(imaplib.IMAP4.error):  # a malformed date is BAD
        conn.append("Ap", None, '"31-Foo-2024 00:00:00 +0000"', msg)


def test_store_flags(target: Target, clients: Clients) -> None:
    conn = clients.login()
    _fill(conn, "Fl", 4)
    ok(conn.select("Fl"))
    typ, data = conn.store("1:2", "+FLAGS", "(\\Seen \\Answered)")
    assert typ == "OK" and len([d for d in data if d]) == 2  # untagged FETCH FLAGS for each
    ok(conn.store("2", "-FLAGS", "(\\Seen)"))
    ok(conn.store("3", "FLAGS", "(\\Draft Keyword1)"))
    typ, data = conn.store("4", "+FLAGS.SILENT", "(\\Flagged)")
    assert typ == "OK" and data == [None]  # .SILENT: no FETCH for our own change (§6.4.6)
    assert _flags(conn) == {1: {"\\Seen", "\\Answered"}, 2: {"\\Answered"}, 3: {"\\Draft", "Keyword1"}, 4: {"\\Flagged"}}
    ok(conn.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)"))
    assert all("\\Deleted" in f for f in _flags(conn).values())
    with pytest.raises(imaplib.IMAP4.error):
        conn.store("1", "+FLAGS", "(\\Bogus)")  # §2.3.2: no such system flag
    try:  # §9 seq-number: a number past the end of the mailbox is an error
        typ, _ = conn.store("99", "+FLAGS", "(\\Seen)")
    except imaplib.IMAP4.error:
        typ = "BAD"
    assert typ in ("NO", "BAD")


def test_copy_and_copyuid(target: Target, clients: Clients) -> None:
    conn = clients.login()
    need_cap(target, capabilities(conn), "UIDPLUS")
    src = _fill(conn, "CpSrc", 3)
    ok(conn.create("CpDst"))
    ok(conn.select("CpSrc"))
    ok(conn.store("2", "+FLAGS", "(\\Flagged)"))
    typ, data = conn.copy("2:3", "CpDst")
    assert typ == "OK"
    m = re.search(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", data[0])
    assert m, data
    assert _set(m.group(2)) == src[1:]
    dst_uids = _set(m.group(3))
    assert _uids_in(clients, "CpSrc") == src  # COPY leaves the source alone
    ok(conn.select("CpDst"))
    got = fetch(conn, "1:*", "(UID FLAGS BODY.PEEK[])")
    assert [v[b"UID"] for _, v in sorted(got.items())] == dst_uids
    assert [v[b"BODY[]"] for _, v in sorted(got.items())] == [_msg(1, "CpSrc"), _msg(2, "CpSrc")]
    assert b"\\Flagged" in got[1][b"FLAGS"]  # flags are copied
    typ, data = conn.copy("1", "Missing-Box")
    assert typ == "NO" and b"TRYCREATE" in data[0]


def test_move(target: Target, clients: Clients) -> None:
    conn = clients.login()
    need_cap(target, capabilities(conn), "MOVE")
    src = _fill(conn, "MvSrc", 5)
    ok(conn.create("MvDst"))
    ok(conn.select("MvSrc"))
    imaplib.Commands.setdefault("MOVE", ("SELECTED",))
    typ, _ = conn._simple_command("MOVE", "2:3", "MvDst")
    assert typ == "OK"
    # RFC 6851 §4.3: COPYUID in an untagged OK, then EXPUNGE responses
    copyuid = [d for d in untagged(conn, "COPYUID")] or [d for d in untagged(conn, "OK") if b"COPYUID" in d]
    assert copyuid
    expunged = [int(x) for x in untagged(conn, "EXPUNGE")]
    assert replay_expunges(src, expunged) == [src[0], src[3], src[4]]
    assert _uids_in(clients, "MvSrc") == [src[0], src[3], src[4]]
    # UID MOVE
    typ, _data = conn.uid("MOVE", str(src[4]), "MvDst")
    assert typ == "OK"
    assert _uids_in(clients, "MvSrc") == [src[0], src[3]]
    ok(conn.select("MvDst"))
    got = fetch(conn, "1:*", "(BODY.PEEK[])")
    assert [v[b"BODY[]"] for _, v in sorted(got.items())] == [_msg(1, "MvSrc"), _msg(2, "MvSrc"), _msg(4, "MvSrc")]


def test_expunge_and_uid_expunge(target: Target, clients: Clients) -> None:
    conn = clients.login()
    uids = _fill(conn, "Ex", 6)
    ok(conn.select("Ex"))
    ok(conn.store("2,4,5", "+FLAGS.SILENT", "(\\Deleted)"))
    typ, data = conn.expunge()
    assert typ == "OK"
    # §7.5.1: each EXPUNGE renumbers the rest (2, 4, 5 go as 2 3 3, or 5 4 2)
    assert replay_expunges(uids, [int(x) for x in data]) == [uids[0], uids[2], uids[5]]
    assert _uids_in(clients, "Ex") == [uids[0], uids[2], uids[5]]
    ok(conn.select("Ex"))
    ok(conn.store("1:3", "+FLAGS.SILENT", "(\\Deleted)"))
    need_cap(target, capabilities(conn), "UIDPLUS")
    typ, data = conn.uid("EXPUNGE", str(uids[2]))  # RFC 4315 §2.1: only the named UIDs
    assert typ == "OK"
    assert _uids_in(clients, "Ex") == [uids[0], uids[5]]


def test_close_unselect(target: Target, clients: Clients) -> None:
    conn = clients.login(BOB)
    uids = _fill(conn, "Cl", 3)
    ok(conn.select("Cl"))
    ok(conn.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
    need_cap(target, capabilities(conn), "UNSELECT")
    ok(conn.unselect())  # RFC 3691: no expunge
    assert conn.state == "AUTH"
    assert _uids_in(clients, "Cl", BOB) == uids
    ok(conn.select("Cl", readonly=True))
    ok(conn.close())  # EXAMINE then CLOSE: no expunge either (§6.4.2)
    assert _uids_in(clients, "Cl", BOB) == uids
    ok(conn.select("Cl"))
    typ, _data = conn.close()  # §6.4.2: expunges silently
    assert typ == "OK" and not untagged(conn, "EXPUNGE")
    assert conn.state == "AUTH"
    assert _uids_in(clients, "Cl", BOB) == uids[1:]
    with pytest.raises(imaplib.IMAP4.error):
        conn.close()  # nothing selected any more


def _set(s: bytes) -> list[int]:
    out: list[int] = []
    for part in s.decode().split(","):
        a, _, b = part.partition(":")
        out.extend(range(int(a), int(b or a) + 1) if not b or int(b) >= int(a) else range(int(a), int(b) - 1, -1))
    return out


def _uids_in(clients: Clients, mailbox: str, user: str = ALICE) -> list[int]:
    """The UIDs in a mailbox, seen from a second, read-only session."""
    other = clients.login(user)
    ok(other.select(mailbox, readonly=True))
    typ, data = other.uid("SEARCH", "ALL")
    assert typ == "OK"
    other.logout()
    return sorted(int(x) for x in data[0].split())
