"""MULTIAPPEND, QUOTA, METADATA, OBJECTID, PREVIEW, SAVEDATE, STATUS items, UTF8=ACCEPT,
BADCHARSET, COMPRESS=DEFLATE, NOTIFY and SEARCH BODY through the full-text index."""

from __future__ import annotations

import re
import socket
import zlib

from tests.harness import CourrielServer
from tests.imap.conftest import Raw, message, unique

USER = "erin@example.test"


def _raw(server: CourrielServer, user: str = USER) -> Raw:
    raw = Raw(server.port("imap"))
    raw.login(user)
    return raw


def test_multiappend_is_atomic(server: CourrielServer) -> None:
    raw = _raw(server)
    box = unique("multi")
    raw.ok(f"a CREATE {box}")
    one, two = message("one"), message("two")
    out = raw.ok(f"b APPEND {box} (\\Seen) {{{len(one)}+}}\r\n".encode() + one + f" {{{len(two)}+}}\r\n".encode() + two)
    assert re.fullmatch(rb"b OK \[APPENDUID \d+ 1:2\] APPEND completed\r\n", out[-1])
    # one bad message (empty) fails the whole command: nothing stored (RFC 3502 §3)
    out = raw.cmd(f"c APPEND {box} {{{len(one)}+}}\r\n".encode() + one + b" {0+}\r\n")
    assert out[-1].startswith(b"c NO ")
    assert raw.ok(f"d STATUS {box} (MESSAGES)")[0].endswith(b"(MESSAGES 2)\r\n")
    raw.ok(f"e SELECT {box}")
    assert raw.ok("f FETCH 1:2 (FLAGS)")[:2] == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n",
                                                 b"* 2 FETCH (FLAGS (\\Recent))\r\n"]  # fmt: skip
    raw.close()


def test_quota(server: CourrielServer) -> None:
    raw = _raw(server, "bob@example.test")
    out = raw.ok("a GETQUOTAROOT INBOX")
    assert out[0] == b"* QUOTAROOT INBOX\r\n"  # no limits set
    assert raw.cmd('b GETQUOTA ""')[-1].startswith(b"b NO [NONEXISTENT]")
    assert raw.cmd('c SETQUOTA "" (STORAGE 10)')[-1].startswith(b"c NO [NOPERM]")
    raw.close()
    server.cli("user", "quota", "bob@example.test", "--bytes", "1048576", "--messages", "100")
    raw = _raw(server, "bob@example.test")
    out = raw.cmd("a GETQUOTAROOT INBOX")
    if out[-1].startswith(b"a OK"):
        assert out[0] == b'* QUOTAROOT INBOX ""\r\n'
        assert re.fullmatch(rb'\* QUOTA "" \(STORAGE \d+ 1024 MESSAGE \d+ 100\)\r\n', out[1]), out
    raw.close()


def test_metadata(server: CourrielServer) -> None:
    raw = _raw(server)
    box = unique("meta")
    raw.ok(f"a CREATE {box}")
    raw.ok(f'b SETMETADATA {box} (/private/comment "my notes" /shared/x/y {{3+}}\r\nabc)')
    out = raw.ok(f"c GETMETADATA {box} /private/comment")
    assert out[0] == f'* METADATA "{box}" (/private/comment "my notes")\r\n'.encode()
    out = raw.ok(f"d GETMETADATA (DEPTH infinity) {box} (/shared)")
    assert out[0] == f'* METADATA "{box}" (/shared/x/y "abc")\r\n'.encode()
    out = raw.ok(f"e GETMETADATA (MAXSIZE 4) {box} (/private/comment /shared/x/y)")
    assert out[0] == f'* METADATA "{box}" (/shared/x/y "abc")\r\n'.encode()
    assert out[-1] == b"e OK [METADATA LONGENTRIES 8] GETMETADATA completed\r\n"
    raw.ok(f"f SETMETADATA {box} (/private/comment NIL)")
    assert len(raw.ok(f"g GETMETADATA {box} /private/comment")) == 1
    raw.ok('h SETMETADATA "" (/private/vendor/x "server entry")')  # METADATA-SERVER
    assert raw.ok('i GETMETADATA "" /private/vendor/x')[0] == b'* METADATA "" (/private/vendor/x "server entry")\r\n'
    assert raw.cmd(f"j SETMETADATA {box} (/bad/name x)")[-1].startswith(b"j BAD ")
    big = b"v" * (16 * 1024 + 1)
    out = raw.cmd(f"k SETMETADATA {box} (/private/big {{{len(big)}+}}\r\n".encode() + big + b")")
    assert out[-1].startswith(b"k NO [METADATA MAXSIZE 16384]")
    assert raw.cmd("l GETMETADATA nosuchbox /private/a")[-1].startswith(b"l NO [NONEXISTENT]")
    raw.close()


def test_objectid_preview_savedate_status(server: CourrielServer) -> None:
    raw = _raw(server)
    box = unique("obj")
    out = raw.ok(f"a CREATE {box}")
    mailboxid = re.search(rb"MAILBOXID \(([A-Za-z0-9_-]+)\)", out[-1]).group(1)  # type: ignore[union-attr]
    root = message("thread root", body="Preview text of the root.\r\n")
    root_id = re.search(rb"Message-ID: <([^>]+)>", root).group(1)  # type: ignore[union-attr]
    reply = message("Re: thread root", extra=f"References: <{root_id.decode()}>\r\n")
    for i, data in enumerate((root, reply)):
        raw.ok(f"b{i} APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    out = raw.ok(f"c SELECT {box}")
    assert f"* OK [MAILBOXID ({mailboxid.decode()})] Ok\r\n".encode() in out
    out = raw.ok("d FETCH 1:2 (EMAILID THREADID PREVIEW SAVEDATE)")
    m1 = re.fullmatch(rb'\* 1 FETCH \(EMAILID \((M\d+)\) THREADID \((T\w+)\) PREVIEW "Preview text of the root\." '
                      rb'SAVEDATE "[^"]+"\)\r\n', out[0])  # fmt: skip
    m2 = re.search(rb"EMAILID \((M\d+)\) THREADID \((T\w+)\)", out[1])
    assert m1 and m2 and m1.group(2) == m2.group(2) and m1.group(1) != m2.group(1)
    raw.ok(f"e COPY 1 {box}")  # a copy keeps its EMAILID (RFC 8474 §5.1)
    assert re.search(rb"EMAILID \((M\d+)\)", raw.ok("f FETCH 3 (EMAILID)")[-2]).group(1) == m1.group(1)  # type: ignore[union-attr]
    assert raw.ok(f"g SEARCH EMAILID {m1.group(1).decode()}")[0] == b"* SEARCH 1 3\r\n"
    assert raw.ok(f"h SEARCH THREADID {m1.group(2).decode()}")[0] == b"* SEARCH 1 2 3\r\n"
    # indexed lookups combine with other keys, and unknown ids match nothing
    assert raw.ok(f"h1 SEARCH NOT EMAILID {m1.group(1).decode()}")[0] == b"* SEARCH 2\r\n"
    assert raw.ok(f"h2 UID SEARCH THREADID {m1.group(2).decode()} UID 2:3")[0] == b"* SEARCH 2 3\r\n"
    assert raw.ok(f"h3 SEARCH OR EMAILID M999999999 THREADID T{'0' * 20}")[0] == b"* SEARCH\r\n"
    assert raw.ok("h4 SEARCH EMAILID x1")[0] == b"* SEARCH\r\n"
    # a message without Message-ID, In-Reply-To or References is a thread of its own
    lone = b"Subject: lone\r\n\r\nno ids here\r\n"
    raw.ok(f"h5 APPEND {box} {{{len(lone)}+}}\r\n".encode() + lone)
    raw.ok("h6 NOOP")
    lone_thread = re.search(rb"THREADID \((TC\d+)\)", raw.ok("h7 FETCH 4 (THREADID)")[0]).group(1)  # type: ignore[union-attr]
    assert raw.ok(f"h8 SEARCH THREADID {lone_thread.decode()}")[0] == b"* SEARCH 4\r\n"
    raw.ok("h9 STORE 4 +FLAGS.SILENT (\\Deleted)")
    raw.ok("h10 EXPUNGE")
    assert raw.ok("i SEARCH SAVEDATESUPPORTED SAVEDSINCE 1-Jan-2020")[0] == b"* SEARCH 1 2 3\r\n"
    assert raw.ok("j FETCH 1 (PREVIEW (LAZY))")[0].startswith(b'* 1 FETCH (PREVIEW "Preview')
    raw.ok("k UNSELECT")
    out = raw.ok(f"l STATUS {box} (MAILBOXID APPENDLIMIT DELETED-STORAGE SIZE)")
    assert re.fullmatch(rb'\* STATUS "[^"]+" \(MAILBOXID \(' + mailboxid + rb'\) APPENDLIMIT \d+ DELETED-STORAGE 0 SIZE \d+\)\r\n',
                        out[0]), out  # fmt: skip
    raw.close()


def test_charset_and_utf8_accept(server: CourrielServer) -> None:
    raw = _raw(server)
    box = unique("utf")
    raw.ok(f"a CREATE {box}")
    raw.ok(f"b SELECT {box}")
    out = raw.cmd("c SEARCH CHARSET KOI8-R TEXT x")
    assert out[-1] == b"c NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset KOI8-R\r\n"
    assert raw.ok("d ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT\r\n"
    name = f"{box}/Grüße"
    raw.ok(f'e CREATE "{name}"'.encode())
    out = raw.ok(b'f LIST "" "' + name.encode() + b'"')
    assert out[0].startswith(b"* LIST (\\HasNoChildren)") and name.encode() in out[0]  # UTF-8, not UTF-7
    data = "Subject: Grüße\r\n\r\nÄpfel\r\n".encode()
    out = raw.ok(f'g APPEND "{name}" UTF8 (~{{{len(data)}+}}\r\n'.encode() + data + b")")
    assert b"APPENDUID" in out[-1]
    raw.close()


def test_fulltext_search_through_index(server: CourrielServer) -> None:
    raw = _raw(server)
    box = unique("fts")
    raw.ok(f"a CREATE {box}")
    bodies = ["The Zebra crossing", "zebras are striped", "no animals here", "ab"]
    for i, body in enumerate(bodies):
        data = message(f"m{i}", body=body + "\r\n")
        raw.ok(f"b{i} APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    raw.ok(f"c SELECT {box}")
    assert raw.ok("d SEARCH BODY zebra")[0] == b"* SEARCH 1 2\r\n"  # case-insensitive substring
    assert raw.ok('e SEARCH BODY "a crossing"')[0] == b"* SEARCH 1\r\n"
    assert raw.ok("f SEARCH BODY ab")[0] == b"* SEARCH 4\r\n"  # shorter than a trigram
    assert raw.ok("g SEARCH TEXT m2")[0] == b"* SEARCH 3\r\n"  # TEXT includes the header
    assert raw.ok("h SEARCH NOT BODY zebra")[0] == b"* SEARCH 3 4\r\n"
    assert raw.ok('i SEARCH BODY "100%"')[0] == b"* SEARCH\r\n"
    assert raw.ok('j SEARCH HEADER Message-ID "example.test"')[0] == b"* SEARCH 1 2 3 4\r\n"
    raw.close()


class _Deflate:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.c = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.d = zlib.decompressobj(-15)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.c.compress(data) + self.c.flush(zlib.Z_SYNC_FLUSH))

    def until(self, tag: bytes) -> bytes:
        while not re.search(rb"(^|\r\n)" + tag + rb" [^\r]*\r\n$", self.buf):
            chunk = self.sock.recv(65536)
            assert chunk, self.buf
            self.buf += self.d.decompress(chunk)
        out, self.buf = self.buf, b""
        return out


def test_compress_deflate(server: CourrielServer) -> None:
    raw = _raw(server)
    assert b"COMPRESS=DEFLATE" in raw.ok("a CAPABILITY")[0]
    assert raw.cmd("b COMPRESS GZIP")[-1].startswith(b"b BAD ")
    assert raw.cmd("c COMPRESS DEFLATE")[-1] == b"c OK DEFLATE active\r\n"
    z = _Deflate(raw.sock)
    z.send(b"d CAPABILITY\r\n")
    out = z.until(b"d")
    assert b"* CAPABILITY " in out and b"COMPRESS=DEFLATE" not in out
    z.send(b"e COMPRESS DEFLATE\r\n")
    assert z.until(b"e").startswith(b"e NO [COMPRESSIONACTIVE]")
    box = unique("z")
    data = message("compressed", body="x" * 5000 + "\r\n")
    z.send(f"f CREATE {box}\r\ng APPEND {box} {{{len(data)}+}}\r\n".encode() + data + b"\r\n")
    assert b"g OK [APPENDUID" in z.until(b"g")
    z.send(f"h SELECT {box}\r\ni FETCH 1 BODY.PEEK[]\r\n".encode())
    out = z.until(b"i")
    assert data in out
    raw.close()


def test_notify_status_and_list(server: CourrielServer) -> None:
    raw = _raw(server)
    box = unique("note")
    raw.ok(f"a CREATE {box}")
    assert raw.cmd("b NOTIFY SET (personal (AnnotationChange))")[-1].startswith(b"b NO [BADEVENT")
    assert raw.cmd("c NOTIFY SET (personal (FlagChange))")[-1].startswith(b"c BAD ")
    out = raw.ok(f"d NOTIFY SET STATUS (mailboxes {box} (MessageNew MessageExpunge)) (personal (MailboxName))")
    assert out[0].startswith(f'* STATUS "{box}" (MESSAGES 0 '.encode()), out
    other = _raw(server)
    data = message("news")
    other.ok(f"x APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    other.ok(f"y CREATE {box}-new")
    other.close()
    # no command in progress: the notifications come by themselves (RFC 5465 §3)
    lines = [raw.line(), raw.line()]
    assert any(ln.startswith(f'* STATUS "{box}" (MESSAGES 1 '.encode()) for ln in lines), lines
    assert f'* LIST () "/" "{box}-new"\r\n'.encode() in lines, lines
    raw.ok("e NOTIFY NONE")
    raw.close()


def test_notify_subscription_and_metadata(server: CourrielServer) -> None:
    raw = _raw(server)
    box, other_box = unique("nsub"), unique("nother")
    raw.ok(f"a CREATE {box}")
    raw.ok(f"a2 CREATE {other_box}")
    raw.ok(f"b NOTIFY SET (mailboxes {box} (SubscriptionChange MailboxMetadataChange)) (personal (ServerMetadataChange))")
    other = _raw(server)
    other.ok(f"c SUBSCRIBE {box}")
    other.ok(f"d SUBSCRIBE {other_box}")  # not in the filter: nothing
    other.ok(f'e SETMETADATA {other_box} (/private/comment "x")')  # not in the filter either
    other.ok(f'f SETMETADATA {box} (/private/comment "hello" /shared/comment "hi")')
    other.ok('g SETMETADATA "" (/private/vendor/x "1")')
    other.ok(f"h UNSUBSCRIBE {box}")
    other.close()
    # RFC 5465 §5.6-5.8: LIST with or without \Subscribed, unsolicited METADATA (RFC 5464 §4.4.2)
    lines = [raw.line() for _ in range(4)]
    assert lines == [
        f'* LIST (\\Subscribed) "/" "{box}"\r\n'.encode(),
        f'* METADATA "{box}" /private/comment /shared/comment\r\n'.encode(),
        b'* METADATA "" /private/vendor/x\r\n',
        f'* LIST () "/" "{box}"\r\n'.encode(),
    ], lines
    assert raw.ok("i NOOP") == [b"i OK NOOP completed\r\n"]  # and nothing about the other mailbox
    raw.ok("j NOTIFY NONE")
    raw.close()
