"""FETCH with imaplib and imapclient (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY) against
expectations computed independently from the bytes we appended (messages.py)."""

from __future__ import annotations

import base64
import imaplib
import quopri
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from imapclient import IMAPClient

from tests.imap_interop.clients import (
    ALICE,
    Clients,
    capabilities,
    fetch,
    need_cap,
    ok,
    tls_context,
)
from tests.imap_interop.corpus import write_mbox
from tests.imap_interop.messages import (
    PDF,
    PNG,
    Entity,
    bodystructure,
    envelope,
    header_fields,
    mixed_message,
    normalize_body,
    simple_message,
)
from tests.imap_interop.peers import Target

WHEN = datetime(2026, 3, 3, 15, 0, 0, tzinfo=timezone(timedelta(hours=1)))
MAILBOX = "FetchBox"


IMPORTED = "FetchImported"


@pytest.fixture(scope="module")
def loaded(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    """The two MIME messages appended to FetchBox (1: simple, 2: mixed), unseen; the same
    two imported from an mbox (``courriel import``) into FetchImported."""
    raws = {"simple": simple_message(), "mixed": mixed_message()}
    c = Clients(target)
    try:
        conn = c.login()
        ok(conn.create(MAILBOX))
        for raw in raws.values():
            ok(conn.append(MAILBOX, None, imaplib.Time2Internaldate(WHEN), raw))
    finally:
        c.close()
    mbox = tmp_path_factory.mktemp("fetch") / "two.mbox"
    write_mbox(mbox, list(raws.values()))
    target.load_mbox(ALICE, mbox, IMPORTED)
    yield raws


def _one(got: dict[bytes, Any], prefix: str) -> Any:
    keys = [k for k in got if k.startswith(prefix.encode())]
    assert len(keys) == 1, (prefix, list(got))
    return got[keys[0]]


def _flags(conn: imaplib.IMAP4, n: int) -> set[bytes]:
    return set(fetch(conn, str(n), "(FLAGS)")[n][b"FLAGS"])


@pytest.mark.parametrize("mailbox", [MAILBOX, IMPORTED])
def test_envelope(clients: Clients, loaded: dict[str, bytes], mailbox: str) -> None:
    conn = clients.login()
    ok(conn.select(mailbox, readonly=True))
    got = fetch(conn, "1:2", "(ENVELOPE)")
    assert got[1][b"ENVELOPE"] == envelope(Entity(loaded["simple"]))
    assert got[2][b"ENVELOPE"] == envelope(Entity(loaded["mixed"]))


@pytest.mark.parametrize("mailbox", [MAILBOX, IMPORTED])
def test_bodystructure_and_body(clients: Clients, loaded: dict[str, bytes], mailbox: str) -> None:
    conn = clients.login()
    ok(conn.select(mailbox, readonly=True))
    got = fetch(conn, "1:2", "(BODYSTRUCTURE BODY BODY.PEEK[])")
    assert [got[1][b"BODY[]"], got[2][b"BODY[]"]] == [loaded["simple"], loaded["mixed"]]
    for n, key in ((1, "simple"), (2, "mixed")):
        e = Entity(loaded[key])
        assert normalize_body(got[n][b"BODYSTRUCTURE"]) == normalize_body(bodystructure(e)), key
        assert normalize_body(got[n][b"BODY"]) == normalize_body(bodystructure(e, extension=False)), key


def test_whole_message_items(clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    ok(conn.select(MAILBOX, readonly=True))
    raw = loaded["mixed"]
    e = Entity(raw)
    got = fetch(conn, "2", "(RFC822.SIZE INTERNALDATE UID BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT])")[2]
    assert got[b"RFC822.SIZE"] == len(raw)
    assert datetime.strptime(got[b"INTERNALDATE"].decode(), "%d-%b-%Y %H:%M:%S %z") == WHEN
    assert got[b"BODY[]"] == raw
    assert got[b"BODY[HEADER]"] == e.header and got[b"BODY[HEADER]"].endswith(b"\r\n\r\n")
    assert got[b"BODY[TEXT]"] == e.body
    got = fetch(conn, "2", "(RFC822.HEADER)")[2]
    assert got[b"RFC822.HEADER"] == e.header
    # macros (§6.4.5): ALL = FLAGS INTERNALDATE RFC822.SIZE ENVELOPE; FULL adds BODY
    full = fetch(conn, "2", "FULL")[2]
    assert {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY"} <= set(full)
    assert set(fetch(conn, "2", "FAST")[2]) >= {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"}
    assert b"ENVELOPE" in fetch(conn, "2", "ALL")[2]


def test_header_fields(clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    ok(conn.select(MAILBOX, readonly=True))
    for n, key in ((1, "simple"), (2, "mixed")):
        raw = loaded[key]
        got = fetch(conn, str(n), "(BODY.PEEK[HEADER.FIELDS (Subject FROM cc)])")[n]
        assert _one(got, "BODY[HEADER.FIELDS ") == header_fields(raw, ["subject", "from", "cc"])
        got = fetch(conn, str(n), "(BODY.PEEK[HEADER.FIELDS.NOT (Subject Content-Type)])")[n]
        assert _one(got, "BODY[HEADER.FIELDS.NOT") == header_fields(raw, ["subject", "content-type"], not_=True)
        got = fetch(conn, str(n), "(BODY.PEEK[HEADER.FIELDS (X-Not-There)])")[n]
        assert _one(got, "BODY[HEADER.FIELDS ") == b"\r\n"


SECTIONS = ["1", "1.1", "1.2", "2", "3", "3.1", "4"]


def test_sections_of_a_multipart(clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    ok(conn.select(MAILBOX, readonly=True))
    e = Entity(loaded["mixed"])
    items = " ".join(f"BODY.PEEK[{s}]" for s in SECTIONS)
    got = fetch(conn, "2", f"({items})")[2]
    for s in SECTIONS:
        assert got[f"BODY[{s}]".encode()] == e.section(s).body, s
    got = fetch(conn, "2", "(BODY.PEEK[1.1.MIME] BODY.PEEK[2.MIME] BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT])")[2]
    assert got[b"BODY[1.1.MIME]"] == e.section("1.1").header
    assert got[b"BODY[2.MIME]"] == e.section("2").header
    inner = Entity(e.section("3").body)
    assert got[b"BODY[3.HEADER]"] == inner.header and got[b"BODY[3.TEXT]"] == inner.body
    got = fetch(conn, "2", "(BODY.PEEK[3.HEADER.FIELDS (Subject)])")[2]
    assert _one(got, "BODY[3.HEADER.FIELDS") == header_fields(inner.raw, ["subject"])
    # a part that does not exist: empty or NIL, or NO (§6.4.5 leaves it open); never other data
    typ, _data = conn.fetch("2", "(BODY.PEEK[9.9])")
    if typ == "OK":
        got = fetch(conn, "2", "(BODY.PEEK[9.9])")[2]
        assert got[b"BODY[9.9]"] in (b"", None)


def test_single_part_sections(clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    ok(conn.select(MAILBOX, readonly=True))
    e = Entity(loaded["simple"])
    got = fetch(conn, "1", "(BODY.PEEK[1] BODY.PEEK[TEXT])")[1]
    assert got[b"BODY[1]"] == e.body == got[b"BODY[TEXT]"]  # §6.4.5: part 1 of a non-multipart message


def test_partial(clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    ok(conn.select(MAILBOX, readonly=True))
    raw = loaded["mixed"]
    e = Entity(raw)
    got = fetch(conn, "2", "(BODY.PEEK[]<0.100> BODY.PEEK[2]<10.30> BODY.PEEK[TEXT]<5.100000000>)")[2]
    assert got[b"BODY[]<0>"] == raw[:100]  # §7.5.2: the origin octet is echoed, not the length
    assert got[b"BODY[2]<10>"] == e.section("2").body[10:40]
    assert got[b"BODY[TEXT]<5>"] == e.body[5:]
    got = fetch(conn, "2", f"(BODY.PEEK[]<{len(raw) + 10}.20>)")[2]
    assert got[f"BODY[]<{len(raw) + 10}>".encode()] == b""  # past the end: empty string


def test_binary(target: Target, clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    need_cap(target, capabilities(conn), "BINARY")
    ok(conn.select(MAILBOX, readonly=True))
    e = Entity(loaded["mixed"])
    plain = quopri.decodestring(e.section("1.1").body.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    html = base64.b64decode(e.section("1.2").body)
    got = fetch(conn, "2", "(BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[4] BINARY.PEEK[1.1] BINARY.SIZE[1.2])")[2]
    assert got[b"BINARY[2]"] == PDF and got[b"BINARY.SIZE[2]"] == len(PDF)
    assert got[b"BINARY[4]"] == PNG
    assert got[b"BINARY[1.1]"] == plain
    assert got[b"BINARY.SIZE[1.2]"] == len(html)
    got = fetch(conn, "2", "(BINARY.PEEK[2]<9.16>)")[2]
    assert got[b"BINARY[2]<9>"] == PDF[9:25]
    # RFC 3516 §4.3: an 8bit part comes back as it is
    got = fetch(conn, "1", "(BINARY.PEEK[1])")[1]
    assert got[b"BINARY[1]"] == Entity(loaded["simple"]).body


def test_seen_is_set_by_body_not_by_peek(clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    ok(conn.create("SeenBox"))
    for raw in loaded.values():
        ok(conn.append("SeenBox", None, None, raw))
    ok(conn.append("SeenBox", None, None, loaded["simple"]))
    ok(conn.select("SeenBox", readonly=True))
    fetch(conn, "1:3", "(BODY[] RFC822.TEXT)")
    assert all(b"\\Seen" not in _flags(conn, n) for n in (1, 2, 3)), "EXAMINE: no \\Seen (§6.3.3)"
    ok(conn.select("SeenBox"))
    fetch(conn, "1", "(BODY.PEEK[] BINARY.PEEK[1] RFC822.HEADER RFC822.SIZE)")
    assert b"\\Seen" not in _flags(conn, 1)
    got = fetch(conn, "1", "(BODY[TEXT])")[1]
    assert b"\\Seen" in _flags(conn, 1)  # §6.4.5: BODY[section] sets \Seen
    assert got[b"BODY[TEXT]"] == Entity(loaded["simple"]).body
    got = fetch(conn, "2", "(RFC822)")[2]
    assert got[b"RFC822"] == loaded["mixed"] and b"\\Seen" in _flags(conn, 2)
    got = fetch(conn, "3", "(RFC822.TEXT)")[3]
    assert got[b"RFC822.TEXT"] == Entity(loaded["simple"]).body and b"\\Seen" in _flags(conn, 3)


def test_uid_fetch_includes_uid(clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    ok(conn.select(MAILBOX, readonly=True))
    uids = {n: v[b"UID"] for n, v in fetch(conn, "1:*", "(UID)").items()}
    got = fetch(conn, f"{uids[2]}", "(RFC822.SIZE)", uid=True)  # §6.4.9: UID comes back unasked
    assert got[2][b"UID"] == uids[2] and got[2][b"RFC822.SIZE"] == len(loaded["mixed"])
    got = fetch(conn, f"{uids[2] + 100}:*", "(FLAGS)", uid=True)  # n:* covers the last UID
    assert {v[b"UID"] for v in got.values()} == {uids[2]}
    assert fetch(conn, "1:*", "(FLAGS)", uid=True).keys() == {1, 2}


def test_bad_fetch_items(clients: Clients, loaded: dict[str, bytes]) -> None:
    conn = clients.login()
    ok(conn.select(MAILBOX, readonly=True))
    for items in ("(FROBNICATE)", "(BODY[HEADER.FIELDS])", "(BODY[1]<x.1>)"):
        with pytest.raises(imaplib.IMAP4.error):
            conn.fetch("1", items)
    ok(conn.noop())


def test_imapclient_fetch(target: Target, loaded: dict[str, bytes]) -> None:
    """The same data through IMAPClient's own parser (ENVELOPE with datetimes, BodyData)."""
    with IMAPClient(target.host, port=target.imaps_port, ssl=True, ssl_context=tls_context(target), timeout=30) as c:
        c.normalise_times = False
        c.login(ALICE, target.users[ALICE])
        c.select_folder(MAILBOX, readonly=True)
        uids = c.search(["ALL"])
        assert len(uids) == 2
        got = c.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "BODY.PEEK[]"])
        simple, mixed = (got[u] for u in sorted(uids))
        env = simple[b"ENVELOPE"]
        assert env.date == datetime(2026, 3, 2, 10, 11, 12, tzinfo=timezone(timedelta(hours=1)))
        assert env.subject == envelope(Entity(loaded["simple"]))[1]
        assert [(a.name, a.mailbox, a.host) for a in env.to] == [
            (None, b"alice", b"example.test"), (b"Bob Martin", b"bob", b"example.test"),
        ]  # fmt: skip
        assert env.message_id == b"<plain.1@example.org>" and env.in_reply_to == b"<parent.0@example.org>"
        bs = mixed[b"BODYSTRUCTURE"]
        assert bs.is_multipart and bs[1].lower() == b"mixed"
        kinds = [b"multipart/" + p[1].lower() if p.is_multipart else p[0].lower() + b"/" + p[1].lower() for p in bs[0]]
        assert kinds == [b"multipart/alternative", b"application/pdf", b"message/rfc822", b"image/png"]
        assert mixed[b"BODY[]"] == loaded["mixed"] and mixed[b"RFC822.SIZE"] == len(loaded["mixed"])
        text = c.fetch(sorted(uids)[:1], ["BODY.PEEK[1]"])[sorted(uids)[0]][b"BODY[1]"]
        assert re.search(rb"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln", text)
