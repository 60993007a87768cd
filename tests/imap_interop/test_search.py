"""SEARCH and UID SEARCH with imaplib: every search key of RFC 9051 §6.4.4 / RFC 3501, CHARSET,
RFC 4731 ESEARCH (MIN MAX ALL COUNT) and RFC 5182 SAVE with "$". Expected results come from
plain Python predicates over the messages we appended."""

from __future__ import annotations

import imaplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
from imapclient.response_parser import parse_response

from tests.imap_interop.clients import (
    BOB,
    Clients,
    capabilities,
    fetch,
    literal,
    need_cap,
    ok,
    untagged,
)
from tests.imap_interop.peers import Target

MAILBOX = "Searchable"


@dataclass
class M:
    frm: str
    to: str
    subject: str
    sent: date
    arrived: date
    body: str
    cc: str = ""
    bcc: str = ""
    flags: tuple[str, ...] = ()
    extra: str = ""
    raw: bytes = field(default=b"", init=False)

    def build(self) -> bytes:
        head = f"From: {self.frm}\r\nTo: {self.to}\r\nSubject: {self.subject}\r\n"
        head += f"Date: {self.sent:%a, %d %b %Y} 12:00:00 +0000\r\nMessage-ID: <{id(self)}@example.org>\r\n"
        head += f"Cc: {self.cc}\r\n" if self.cc else ""
        head += f"Bcc: {self.bcc}\r\n" if self.bcc else ""
        head += self.extra
        head += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        self.raw = (head + "\r\n" + self.body).encode()
        return self.raw

    @property
    def size(self) -> int:
        return len(self.raw)


MESSAGES = [
    M("Alice <alice@example.org>", "bob@example.test", "quarterly report", date(2025, 1, 10), date(2025, 1, 11),
      "numbers are up\r\n", cc="carol@example.net", flags=("\\Seen", "\\Answered")),
    M("bob@example.org", "alice@example.test", "Lunch?", date(2025, 2, 1), date(2025, 2, 1),
      "shall we meet at noon\r\n" + "padding line\r\n" * 40, flags=("\\Flagged",)),
    M("Carol <carol@example.net>", "team@example.test", "Grüße aus Köln", date(2025, 2, 14), date(2025, 2, 15),
      "Schöne Grüße, déjà vu\r\n", bcc="secret@example.test", flags=("\\Seen", "$Important")),
    M("dave@example.com", "alice@example.test", "=?utf-8?q?Caf=C3=A9_cr=C3=A8me?=", date(2025, 3, 1), date(2025, 3, 2),
      "plain words only\r\n", flags=("\\Draft",), extra="X-Mailer: ExampleMail 2.0\r\n"),
    M("Alice <alice@example.org>", "bob@example.test", "Re: quarterly report", date(2025, 3, 5), date(2025, 3, 5),
      "thanks, the NUMBERS look fine\r\n", flags=("\\Deleted", "\\Seen")),
    M("erin@example.org", "alice@example.test", "big attachment", date(2025, 4, 1), date(2025, 4, 2),
      "x" * 3000 + "\r\n", cc="bob@example.test", flags=("$Important", "\\Flagged")),
    M("frank@example.org", "alice@example.test", "nothing special", date(2025, 4, 20), date(2025, 4, 21),
      "just text\r\n", extra="X-Mailer: OtherMail\r\n"),
]


@pytest.fixture(scope="module")
def loaded(target: Target) -> Iterator[list[M]]:
    c = Clients(target)
    try:
        conn = c.login(BOB)
        ok(conn.create(MAILBOX))
        for m in MESSAGES:
            arrived = datetime(m.arrived.year, m.arrived.month, m.arrived.day, 12, tzinfo=UTC)
            flags = "(" + " ".join(m.flags) + ")" if m.flags else None
            ok(conn.append(MAILBOX, flags, imaplib.Time2Internaldate(arrived), m.build()))
    finally:
        c.close()
    yield MESSAGES


def _nums(data: list[bytes]) -> list[int]:
    return sorted(int(x) for x in b" ".join(d for d in data if d).split())


def _has(m: M, flag: str) -> bool:
    return flag.lower() in (f.lower() for f in m.flags)


def _in(needle: str, hay: str) -> bool:
    return needle.casefold() in hay.casefold()


D = date
CASES: list[tuple[str, Callable[[M], bool]]] = [
    ("ALL", lambda m: True),
    ("ANSWERED", lambda m: _has(m, "\\Answered")),
    ("UNANSWERED", lambda m: not _has(m, "\\Answered")),
    ("DELETED", lambda m: _has(m, "\\Deleted")),
    ("UNDELETED", lambda m: not _has(m, "\\Deleted")),
    ("DRAFT", lambda m: _has(m, "\\Draft")),
    ("UNDRAFT", lambda m: not _has(m, "\\Draft")),
    ("FLAGGED", lambda m: _has(m, "\\Flagged")),
    ("UNFLAGGED", lambda m: not _has(m, "\\Flagged")),
    ("SEEN", lambda m: _has(m, "\\Seen")),
    ("UNSEEN", lambda m: not _has(m, "\\Seen")),
    ("KEYWORD $Important", lambda m: _has(m, "$Important")),
    ("UNKEYWORD $Important", lambda m: not _has(m, "$Important")),
    ("FROM alice", lambda m: _in("alice", m.frm)),
    ("FROM \"Carol\"", lambda m: _in("carol", m.frm)),
    ("TO alice@example.test", lambda m: _in("alice@example.test", m.to)),
    ("CC bob", lambda m: _in("bob", m.cc)),
    ("BCC secret", lambda m: _in("secret", m.bcc)),
    ("SUBJECT QUARTERLY", lambda m: _in("quarterly", m.subject)),
    ("BODY numbers", lambda m: _in("numbers", m.body)),
    ("TEXT carol", lambda m: _in("carol", m.raw.decode())),
    ("HEADER X-Mailer ExampleMail", lambda m: "ExampleMail" in m.extra),
    ("HEADER X-Mailer \"\"", lambda m: "X-Mailer" in m.extra),  # §6.4.4: "" matches any such field
    ("LARGER 1000", lambda m: m.size > 1000),
    ("SMALLER 300", lambda m: m.size < 300),
    ("BEFORE 1-Mar-2025", lambda m: m.arrived < D(2025, 3, 1)),
    ("ON 2-Mar-2025", lambda m: m.arrived == D(2025, 3, 2)),
    ("SINCE 2-Mar-2025", lambda m: m.arrived >= D(2025, 3, 2)),
    ("SENTBEFORE 1-Mar-2025", lambda m: m.sent < D(2025, 3, 1)),
    ("SENTON 1-Mar-2025", lambda m: m.sent == D(2025, 3, 1)),
    ("SENTSINCE 5-Mar-2025", lambda m: m.sent >= D(2025, 3, 5)),
    ("NOT SEEN", lambda m: not _has(m, "\\Seen")),
    ("OR FLAGGED DRAFT", lambda m: _has(m, "\\Flagged") or _has(m, "\\Draft")),
    ("(FROM alice SUBJECT report) UNDELETED", lambda m: _in("alice", m.frm) and not _has(m, "\\Deleted")),
    ("OR (SEEN FLAGGED) NOT OR ANSWERED LARGER 2000", lambda m: (_has(m, "\\Seen") and _has(m, "\\Flagged"))
        or not (_has(m, "\\Answered") or m.size > 2000)),
    ("2:4", lambda m: MESSAGES.index(m) in (1, 2, 3)),
    ("2,5:* SEEN", lambda m: MESSAGES.index(m) in (1, 4, 5, 6) and _has(m, "\\Seen")),
]  # fmt: skip


@pytest.mark.parametrize(("criteria", "pred"), CASES, ids=[c for c, _ in CASES])
def test_search_key(target: Target, clients: Clients, loaded: list[M], criteria: str, pred: Callable[[M], bool]) -> None:
    conn = clients.login(BOB)
    ok(conn.select(MAILBOX, readonly=True))
    expected = [i + 1 for i, m in enumerate(loaded) if pred(m)]
    assert _nums(ok(conn.search(None, criteria))) == expected
    # the UID form gives the UIDs of the same messages
    uids = [int(x) for x in ok(conn.uid("SEARCH", "ALL"))[0].split()]
    assert _nums(ok(conn.uid("SEARCH", criteria))) == [uids[n - 1] for n in expected]


def test_search_uid_key_and_decoded_headers(clients: Clients, loaded: list[M]) -> None:
    conn = clients.login(BOB)
    ok(conn.select(MAILBOX, readonly=True))
    uids = [int(x) for x in ok(conn.uid("SEARCH", "ALL"))[0].split()]
    assert _nums(ok(conn.search(None, f"UID {uids[1]}:{uids[3]}"))) == [2, 3, 4]
    assert _nums(ok(conn.search(None, f"UID {uids[-1] + 1000}"))) == []
    # RFC 2047 encoded words are matched decoded (as every client expects; RFC 9051 §6.4.4)
    literal(conn, "Café".encode())
    assert _nums(ok(conn.search("UTF-8", "SUBJECT"))) == [4]


def test_search_charset_utf8(clients: Clients, loaded: list[M]) -> None:
    conn = clients.login(BOB)
    ok(conn.select(MAILBOX, readonly=True))
    literal(conn, "Grüßen".encode())  # in no message
    assert _nums(ok(conn.search("UTF-8", "SUBJECT"))) == []
    literal(conn, "Grüße".encode())
    assert _nums(ok(conn.search("UTF-8", "SUBJECT"))) == [3]
    literal(conn, "déjà".encode())
    assert _nums(ok(conn.search("UTF-8", "BODY"))) == [3]
    assert _nums(ok(conn.search("US-ASCII", "FROM", "carol"))) == [3]
    typ, data = conn.search("X-NO-SUCH-CHARSET", "FROM", "carol")
    assert typ == "NO" and b"[BADCHARSET" in data[0]  # §6.4.4: NO [BADCHARSET] for unknown charsets


def test_search_recent_new_old(target: Target, clients: Clients) -> None:
    """IMAP4rev1 \\Recent: the first session to select a mailbox gets the new messages."""
    conn = clients.login(BOB)
    ok(conn.create("RecentBox"))
    for i in range(3):
        ok(conn.append("RecentBox", "(\\Seen)" if i == 0 else None, None, f"Subject: r{i}\r\n\r\nr\r\n".encode()))
    ok(conn.select("RecentBox"))
    assert int(untagged(conn, "RECENT")[0]) == 3
    assert _nums(ok(conn.search(None, "RECENT"))) == [1, 2, 3]
    assert _nums(ok(conn.search(None, "NEW"))) == [2, 3]  # RECENT UNSEEN
    assert _nums(ok(conn.search(None, "OLD"))) == []
    other = clients.login(BOB)
    ok(other.select("RecentBox"))
    assert _nums(ok(other.search(None, "RECENT"))) == []
    assert _nums(ok(other.search(None, "OLD"))) == [1, 2, 3]


def _esearch(conn: imaplib.IMAP4, *args: str) -> dict[str, object]:
    typ, data = conn._simple_command(*args)
    assert typ == "OK", data
    lines = untagged(conn, "ESEARCH")
    assert len(lines) == 1, lines
    parsed = parse_response([lines[0]])
    assert isinstance(parsed[0], tuple) and parsed[0][0].upper() == b"TAG"  # RFC 4731 §3.1
    rest = list(parsed[1:])
    out: dict[str, object] = {}
    if rest and rest[0] == b"UID":
        out["UID"] = True
        rest = rest[1:]
    for k, v in zip(rest[::2], rest[1::2]):
        out[k.decode().upper()] = v if isinstance(v, int) else v.decode()
    return out


def _expand(s: object) -> list[int]:
    out: list[int] = []
    for part in str(s).split(","):
        a, _, b = part.partition(":")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def test_esearch(target: Target, clients: Clients, loaded: list[M]) -> None:
    conn = clients.login(BOB)
    need_cap(target, capabilities(conn), "ESEARCH")
    ok(conn.select(MAILBOX, readonly=True))
    flagged = [i + 1 for i, m in enumerate(loaded) if _has(m, "\\Flagged") or _has(m, "\\Seen")]
    got = _esearch(conn, "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "OR", "FLAGGED", "SEEN")
    assert got["MIN"] == flagged[0] and got["MAX"] == flagged[-1] and got["COUNT"] == len(flagged)
    assert _expand(got["ALL"]) == flagged
    assert "UID" not in got
    got = _esearch(conn, "SEARCH", "RETURN", "()", "FLAGGED")  # §3.1: () means ALL
    assert _expand(got["ALL"]) == [i + 1 for i, m in enumerate(loaded) if _has(m, "\\Flagged")]
    uids = [int(x) for x in ok(conn.uid("SEARCH", "ALL"))[0].split()]
    got = _esearch(conn, "UID", "SEARCH", "RETURN", "(COUNT MIN)", "UNSEEN")
    unseen = [uids[i] for i, m in enumerate(loaded) if not _has(m, "\\Seen")]
    assert got == {"UID": True, "COUNT": len(unseen), "MIN": unseen[0]}
    got = _esearch(conn, "SEARCH", "RETURN", "(MIN MAX COUNT)", "SUBJECT", "no-such-subject-anywhere")
    assert got == {"COUNT": 0}  # no MIN/MAX when nothing matched


def test_search_save_and_dollar(target: Target, clients: Clients, loaded: list[M]) -> None:
    conn = clients.login(BOB)
    need_cap(target, capabilities(conn), "SEARCHRES")
    ok(conn.select(MAILBOX, readonly=True))
    typ, _data = conn._simple_command("SEARCH", "RETURN", "(SAVE)", "FROM", "alice")
    assert typ == "OK" and not untagged(conn, "ESEARCH")  # RFC 5182 §2.4: SAVE alone returns nothing
    alice = [i + 1 for i, m in enumerate(loaded) if _in("alice", m.frm)]
    assert sorted(fetch(conn, "$", "(UID)")) == alice
    assert _nums(ok(conn.search(None, "$", "UNDELETED"))) == [n for n in alice if not _has(loaded[n - 1], "\\Deleted")]
    assert _nums(ok(conn.search(None, "NOT", "$"))) == [n for n in range(1, len(loaded) + 1) if n not in alice]
    got = _esearch(conn, "SEARCH", "RETURN", "(SAVE MIN)", "FLAGGED")
    flagged = [i + 1 for i, m in enumerate(loaded) if _has(m, "\\Flagged")]
    assert got == {"MIN": flagged[0]}
    # RFC 5182 §2.1: SAVE with MIN alone saves just the minimum, replacing the previous $
    assert _nums(ok(conn.search(None, "$"))) == [flagged[0]]
    ok(conn._simple_command("SEARCH", "RETURN", "(SAVE)", "FLAGGED"))
    assert _nums(ok(conn.uid("SEARCH", "$"))) == _nums(ok(conn.uid("SEARCH", "FLAGGED")))


def test_bad_search(clients: Clients, loaded: list[M]) -> None:
    conn = clients.login(BOB)
    ok(conn.select(MAILBOX, readonly=True))
    for criteria in ("FROBNICATE", "BEFORE 1-Foo-2025", "LARGER x", "(FROM a", "OR SEEN"):
        with pytest.raises(imaplib.IMAP4.error):
            conn.search(None, criteria)
            pytest.fail(f"SEARCH {criteria} did not fail")
    ok(conn.noop())
