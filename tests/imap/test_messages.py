"""APPEND, FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT and
their UID forms: transcripts over a raw socket, plus imaplib for the main flow."""

from __future__ import annotations

import email
import email.policy
import re

from tests.harness import CourrielServer
from tests.imap.conftest import Raw, imap, message, unique

MULTI = (
    b"From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: =?utf-8?q?caf=C3=A9?= report\r\n"
    b"Date: Mon, 1 Jan 2024 12:00:00 +0000\r\nMessage-ID: <multi@example.test>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n'
    b"--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe quarterly numbers.\r\n"
    b"--zz\r\nContent-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQ=\r\n--zz--\r\n"
)


def _box(server: CourrielServer, user: str, *messages: tuple[bytes, str | None]) -> str:
    client = imap(server, user)
    box = unique("msgs")
    client.create(box)
    for data, flags in messages:
        assert client.append(box, flags, None, data)[0] == "OK"
    client.logout()
    return box


def test_append_variants(server: CourrielServer) -> None:
    raw = Raw(server.port("imap"))
    raw.login("alice@example.test")
    box = unique("app")
    raw.ok(f"a CREATE {box}")
    data = message("appended")
    out = raw.cmd(f'b APPEND {box} (\\Flagged $Label) " 5-Mar-2024 07:08:09 -0500" {{{len(data)}+}}\r\n'.encode() + data)
    assert re.fullmatch(rb"b OK \[APPENDUID \d+ 1\] APPEND completed\r\n", out[-1])
    assert raw.cmd(f"c APPEND {box}-missing {{3+}}\r\nabc".encode())[-1].startswith(b"c NO [TRYCREATE]")
    assert raw.cmd(f"d APPEND {box} {{0+}}\r\n".encode())[-1] == b"d NO empty message\r\n"
    assert raw.cmd(f"e APPEND {box} (\\Recent) {{3+}}\r\nabc".encode())[-1].startswith(b"e BAD ")
    # literal8 (RFC 3516 §4.4): a binary message
    out = raw.cmd(f"f APPEND {box} ~{{11+}}\r\n".encode() + b"X: y\r\n\r\na\x00b\r\n")
    assert out[-1].startswith(b"f OK [APPENDUID ")
    raw.ok(f"g SELECT {box}")
    out = raw.ok("h FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert out[0] == b'* 1 FETCH (FLAGS (\\Flagged \\Recent $Label) INTERNALDATE " 5-Mar-2024 12:08:09 +0000" RFC822.SIZE %d)\r\n' % len(data)
    # APPEND to the selected mailbox announces the new message.
    out = raw.cmd(f"i APPEND {box} {{3+}}\r\nabc".encode())
    assert out[0] == b"* 3 EXISTS\r\n"
    raw.close()


def test_fetch_items(server: CourrielServer) -> None:
    box = _box(server, "alice@example.test", (MULTI, None))
    raw = Raw(server.port("imap"))
    raw.login("alice@example.test")
    raw.ok(f"a SELECT {box}")
    out = raw.ok("b FETCH 1 (ENVELOPE)")
    assert out[0] == (
        b'* 1 FETCH (ENVELOPE ("Mon, 1 Jan 2024 12:00:00 +0000" "=?utf-8?q?caf=C3=A9?= report" (("Ann" NIL "ann"'
        b' "example.test")) (("Ann" NIL "ann" "example.test")) (("Ann" NIL "ann" "example.test")) ((NIL NIL "bob"'
        b' "example.test")) NIL NIL NIL "<multi@example.test>"))\r\n'
    )
    out = raw.ok("c FETCH 1 (BODYSTRUCTURE BODY)")
    assert out[0] == (
        b'* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 22 1 NIL NIL NIL NIL)'
        b'("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 8 NIL NIL NIL NIL) "mixed"'
        b' ("boundary" "zz") NIL NIL NIL) BODY (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 22 1)'
        b'("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 8) "mixed"))\r\n'
    )
    out = raw.ok("d FETCH 1 (BODY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[HEADER.FIELDS (Subject)]<0.8>)")
    assert out[0] == (
        b"* 1 FETCH (BODY[1] {22}\r\nThe quarterly numbers. BINARY[2] {5}\r\n\x00\x01\x02\x03\x04"
        b" BINARY.SIZE[2] 5 BODY[HEADER.FIELDS (SUBJECT)]<0> {8}\r\nSubject:)\r\n"
    ).replace(b"{5}\r\n\x00", b"~{5}\r\n\x00")
    assert raw.ok("e FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Recent))\r\n"  # PEEK left \Seen alone
    out = raw.ok("f FETCH 1 (BODY[2.MIME])")
    mime = b"Content-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    assert out[0] == b"* 1 FETCH (BODY[2.MIME] {%d}\r\n%s FLAGS (\\Seen \\Recent))\r\n" % (len(mime), mime)
    out = raw.ok("g UID FETCH 1 (RFC822.SIZE RFC822.HEADER)")
    header = MULTI[: MULTI.index(b"\r\n\r\n") + 4]
    assert out[0] == b"* 1 FETCH (UID 1 RFC822.SIZE %d RFC822.HEADER {%d}\r\n%s)\r\n" % (len(MULTI), len(header), header)
    out = raw.ok("h FETCH 1 (BODY[] BODY[9])")
    assert out[0] == b"* 1 FETCH (BODY[] {%d}\r\n%s BODY[9] NIL)\r\n" % (len(MULTI), MULTI)
    assert raw.cmd("i FETCH 2 FLAGS") == [b"i BAD invalid message sequence number\r\n"]
    assert raw.ok("j UID FETCH 2:9 FLAGS") == [b"j OK UID FETCH completed\r\n"]
    out = raw.ok("k FETCH 1 FAST")
    assert re.fullmatch(rb'\* 1 FETCH \(FLAGS \(\\Seen \\Recent\) INTERNALDATE "[^"]+" RFC822.SIZE \d+\)\r\n', out[0])
    raw.close()


def test_store_flags(server: CourrielServer) -> None:
    box = _box(server, "bob@example.test", (message("a"), None), (message("b"), None), (message("c"), None))
    raw = Raw(server.port("imap"))
    raw.login("bob@example.test")
    raw.ok("x ENABLE IMAP4rev2")
    raw.ok(f"a SELECT {box}")
    assert raw.ok("b STORE 1:2 +FLAGS (\\Seen)")[:-1] == [
        b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"* 2 FETCH (FLAGS (\\Seen))\r\n"]  # fmt: skip
    out = raw.ok("c STORE 2 FLAGS (\\Answered $Work)")
    assert out[:-1] == [b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work)\r\n",
                        b"* 2 FETCH (FLAGS (\\Answered $Work))\r\n"]  # fmt: skip
    assert raw.ok("d UID STORE 1:* -FLAGS.SILENT (\\Seen)") == [b"d OK UID STORE completed\r\n"]
    assert raw.ok("e UID STORE 3 +FLAGS \\Flagged")[0] == b"* 3 FETCH (UID 3 FLAGS (\\Flagged))\r\n"
    assert raw.ok("f FETCH 1:* (FLAGS)")[:-1] == [
        b"* 1 FETCH (FLAGS ())\r\n", b"* 2 FETCH (FLAGS (\\Answered $Work))\r\n", b"* 3 FETCH (FLAGS (\\Flagged))\r\n"]  # fmt: skip
    raw.ok(f"g EXAMINE {box}")
    assert raw.cmd("h STORE 1 +FLAGS (\\Seen)") == [b"h NO [READ-ONLY] mailbox is read-only\r\n"]
    raw.close()


def test_search(server: CourrielServer) -> None:
    box = _box(
        server, "carol@example.test",
        (message("Lunch plans", "Pizza at noon?\r\n"), "(\\Seen)"),
        (message("Quarterly report", "Numbers attached.\r\n", sender="ann@example.test"), "(\\Flagged)"),
        (MULTI, None),
        (message("lunch again", "Sushi.\r\n", extra="X-Priority: 1\r\n"), "(\\Deleted $Later)"),
    )  # fmt: skip
    raw = Raw(server.port("imap"))
    raw.login("carol@example.test")
    raw.ok(f"a SELECT {box}")

    def search(q: str) -> bytes:
        out = raw.ok("s " + q)
        return out[0] if len(out) == 2 else b""

    assert search("SEARCH ALL") == b"* SEARCH 1 2 3 4\r\n"
    assert search("SEARCH SUBJECT lunch") == b"* SEARCH 1 4\r\n"
    assert search("SEARCH FROM ann") == b"* SEARCH 2 3\r\n"
    assert search("SEARCH UNSEEN NOT DELETED") == b"* SEARCH 2 3\r\n"
    assert search("SEARCH OR FLAGGED KEYWORD $Later") == b"* SEARCH 2 4\r\n"
    assert search("SEARCH BODY sushi") == b"* SEARCH 4\r\n"
    assert search("SEARCH TEXT quarterly") == b"* SEARCH 2 3\r\n"
    assert search("SEARCH HEADER X-Priority 1") == b"* SEARCH 4\r\n"
    assert search("SEARCH 2:3 LARGER 10") == b"* SEARCH 2 3\r\n"
    assert search("SEARCH SENTBEFORE 1-Jun-2024") == b"* SEARCH 3\r\n"
    assert search('SEARCH CHARSET UTF-8 SUBJECT "café"') == b"* SEARCH 3\r\n"
    assert search("SEARCH NEW") == b"* SEARCH 2 3 4\r\n"
    assert search("UID SEARCH UID 2:*") == b"* SEARCH 2 3 4\r\n"
    assert search("SEARCH NOT (OR SEEN FLAGGED)") == b"* SEARCH 3 4\r\n"
    assert raw.cmd("b SEARCH CHARSET KOI8-R ALL") == [b"b NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset KOI8-R\r\n"]
    # ESEARCH (RFC 4731) and the saved result (RFC 5182)
    assert search("SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT lunch") == b'* ESEARCH (TAG "s") MIN 1 MAX 4 COUNT 2 ALL 1,4\r\n'
    assert search("UID SEARCH RETURN (COUNT) SUBJECT nothing-like-this") == b'* ESEARCH (TAG "s") UID COUNT 0\r\n'
    assert search("SEARCH RETURN (SAVE) FROM ann") == b""
    assert raw.ok("c FETCH $ (UID)")[:-1] == [b"* 2 FETCH (UID 2)\r\n", b"* 3 FETCH (UID 3)\r\n"]
    assert search("SEARCH $ FLAGGED") == b"* SEARCH 2\r\n"
    raw.ok("d ENABLE IMAP4rev2")  # IMAP4rev2: SEARCH answers with ESEARCH
    assert search("SEARCH SUBJECT lunch") == b'* ESEARCH (TAG "s") ALL 1,4\r\n'
    raw.close()


def test_copy_move_expunge(server: CourrielServer) -> None:
    box = _box(server, "dave@example.test", *[(message(f"m{i}"), None) for i in range(5)])
    dest = unique("dest")
    raw = Raw(server.port("imap"))
    raw.login("dave@example.test")
    raw.ok(f"a CREATE {dest}")
    out = raw.ok(f"b SELECT {box}")
    uidvalidity = next(line for line in out if b"UIDVALIDITY" in line).split()[3].rstrip(b"]")
    out = raw.cmd(f"c COPY 1:2 {dest}")
    assert re.fullmatch(rb"c OK \[COPYUID \d+ 1:2 1:2\] COPY completed\r\n", out[-1])
    assert raw.cmd("d COPY 1 nowhere-at-all")[-1].startswith(b"d NO [TRYCREATE]")
    out = raw.ok(f"e MOVE 2:3 {dest}")
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 2:3 3:4\] moved\r\n", out[0])
    assert out[1:] == [b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"e OK MOVE completed\r\n"]
    out = raw.ok(f"f UID MOVE 5 {dest}")
    assert out[1:] == [b"* 3 EXPUNGE\r\n", b"f OK UID MOVE completed\r\n"]
    raw.ok("g STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    assert raw.ok("h UID EXPUNGE 4") == [b"* 2 EXPUNGE\r\n", b"h OK UID EXPUNGE completed\r\n"]
    assert raw.ok("i EXPUNGE") == [b"* 1 EXPUNGE\r\n", b"i OK EXPUNGE completed\r\n"]
    assert raw.ok("j STATUS " + box + " (MESSAGES UIDVALIDITY)")[0] == (
        f'* STATUS "{box}" (MESSAGES 0 UIDVALIDITY '.encode() + uidvalidity + b")\r\n")
    raw.ok(f"k SELECT {dest}")
    raw.ok("l STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert raw.ok("m CLOSE") == [b"m OK CLOSE completed\r\n"]  # expunges silently
    assert b"* 4 EXISTS\r\n" in raw.ok(f"n SELECT {dest}")
    raw.ok("o STORE 1 +FLAGS.SILENT (\\Deleted)")
    raw.ok("p UNSELECT")  # does not expunge
    assert b"* 4 EXISTS\r\n" in raw.ok(f"q EXAMINE {dest}")
    assert raw.cmd("r EXPUNGE") == [b"r NO [READ-ONLY] mailbox is read-only\r\n"]
    raw.close()


def test_imaplib_main_flow(server: CourrielServer) -> None:
    client = imap(server, "erin@example.test")
    box = unique("flow")
    client.create(box)
    for i in range(3):
        client.append(box, None, None, message(f"flow {i}", f"Body {i}\r\n"))
    typ, data = client.select(box)
    assert (typ, data) == ("OK", [b"3"])
    typ, data = client.fetch("2", "(RFC822)")
    parsed = email.message_from_bytes(data[0][1], policy=email.policy.default)
    assert parsed["Subject"] == "flow 1" and parsed.get_content().strip() == "Body 1"
    typ, data = client.fetch("2", "(FLAGS)")
    assert b"\\Seen" in data[0]
    assert client.search(None, "SEEN") == ("OK", [b"2"])
    client.store("1:3", "+FLAGS", "\\Deleted")
    typ, data = client.expunge()
    assert data == [b"3", b"2", b"1"]
    client.close()
    client.logout()


def test_append_target_follows_mailbox_changes(server: CourrielServer) -> None:
    """APPEND remembers mailbox ids per user: deleting, re-creating or renaming a mailbox
    (here from another session) is seen by the next APPEND."""
    raw = Raw(server.port("imap"))
    raw.login("alice@example.test")
    other = Raw(server.port("imap"))
    other.login("alice@example.test")
    box = unique("target")
    raw.ok(f"a CREATE {box}")
    data = message("to the target")
    append = f"APPEND {box} {{{len(data)}+}}\r\n".encode() + data
    assert re.fullmatch(rb"b OK \[APPENDUID (\d+) 1\] APPEND completed\r\n", raw.ok(b"b " + append)[-1])
    other.ok(f"c DELETE {box}")
    assert raw.cmd(b"d " + append)[-1].startswith(b"d NO [TRYCREATE]")
    other.ok(f"e CREATE {box}")
    assert re.fullmatch(rb"f OK \[APPENDUID \d+ 1\] APPEND completed\r\n", raw.ok(b"f " + append)[-1])
    other.ok(f"g RENAME {box} {box}-renamed")
    assert raw.cmd(b"h " + append)[-1].startswith(b"h NO [TRYCREATE]")
    assert raw.ok(f"i STATUS {box}-renamed (MESSAGES)")[0].endswith(b"(MESSAGES 1)\r\n")
    other.close()
    raw.close()


def test_fetch_from_index_matches_rows(server: CourrielServer) -> None:
    """FETCH answered from the shared index and the rendered cache (no query) says what the
    path through the message rows says, also for a session whose view lags the index."""
    raw = Raw(server.port("imap"))
    raw.login("alice@example.test")
    other = Raw(server.port("imap"))
    other.login("alice@example.test")
    box = unique("idx")
    raw.ok(f"a CREATE {box}")
    for i in range(3):
        data = message(f"indexed {i}", extra=f"X-N: {i}\r\n") if i else b"Subject: plain\r\n\r\nx\r\n"
        raw.ok(f"b{i} APPEND {box} (\\Flagged $k{i}) {{{len(data)}+}}\r\n".encode() + data)
    raw.ok(f"c SELECT {box}")
    items = "UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE EMAILID MODSEQ"
    fetched = lambda out: [line for line in out if b" FETCH (" in line]  # noqa: E731
    fast = fetched(raw.ok(f"d FETCH 1:* ({items})"))
    slow = fetched(raw.ok(f"e FETCH 1:* ({items} INTERNALDATE)"))  # INTERNALDATE: the rows
    assert len(fast) == 3
    assert [re.sub(rb' INTERNALDATE "[^"]*"', b"", line) for line in slow] == fast
    # another session appends: this one has not been told yet, its numbers stay
    data = message("late")
    other.ok(f"f APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    assert fetched(raw.ok(f"g FETCH 2:3 ({items})")) == fast[1:]
    late = fetched(raw.ok("h FETCH 1:* (UID RFC822.SIZE)"))
    assert len(late) == 4 and late[3] == b"* 4 FETCH (UID 4 RFC822.SIZE %d)\r\n" % len(data)
    other.close()
    raw.close()


def test_flag_search_from_index(server: CourrielServer) -> None:
    """SEARCH on one system flag comes from the shared index: it follows STORE at once, and
    agrees with the store's answer (the same search with another key, UID 1:*)."""
    raw = Raw(server.port("imap"))
    raw.login("alice@example.test")
    box = unique("fsearch")
    raw.ok(f"a CREATE {box}")
    for i in range(5):
        data = message(f"flags {i}")
        raw.ok(f"b{i} APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    raw.ok(f"c SELECT {box}")
    raw.ok("d STORE 2,4 +FLAGS.SILENT (\\Seen)")
    raw.ok("e STORE 3 +FLAGS.SILENT (\\Deleted)")
    for key, expected in (("UNSEEN", b"1 3 5"), ("SEEN", b"2 4"), ("DELETED", b"3"), ("UNDELETED", b"1 2 4 5"),
                          ("FLAGGED", b"")):  # fmt: skip
        found = raw.ok(f"f SEARCH {key}")[0]
        assert found == b"* SEARCH" + (b" " + expected if expected else b"") + b"\r\n", (key, found)
        assert raw.ok(f"g SEARCH {key} UID 1:*")[0] == found  # through the store
    raw.ok("h EXPUNGE")
    assert raw.ok("i UID SEARCH UNSEEN")[0] == b"* SEARCH 1 5\r\n"
    assert raw.ok("j SEARCH UNSEEN")[0] == b"* SEARCH 1 4\r\n"
    raw.close()


def test_uid_fetch_flags_fast_path(server: CourrielServer) -> None:
    """UID FETCH 1:* (FLAGS), formatted straight from the index's arrays, says what the
    general path says, keywords and \\Recent included."""
    raw = Raw(server.port("imap"))
    raw.login("alice@example.test")
    box = unique("poll")
    raw.ok(f"a CREATE {box}")
    for i in range(6):
        data = message(f"poll {i}")
        flags = ("(\\Seen $Done) " if i % 3 == 0 else "(\\Flagged) " if i % 3 == 1 else "")
        raw.ok(f"b{i} APPEND {box} {flags}{{{len(data)}+}}\r\n".encode() + data)
    raw.ok(f"c SELECT {box}")  # IMAP4rev1: this session gets \Recent
    fast = raw.ok("d UID FETCH 1:* (FLAGS)")[:-1]
    general = raw.ok("e UID FETCH 1:* (FLAGS RFC822.SIZE)")[:-1]
    assert len(fast) == 6 and any(b"$Done" in line for line in fast) and b"\\Recent" in fast[0]
    assert [re.sub(rb" RFC822.SIZE \d+", b"", line) for line in general] == fast
    assert raw.ok("f UID FETCH 2:4 (FLAGS)")[:-1] == fast[1:4]
    raw.close()
