"""The redaction machines, fed raw bytes per direction: tables of (protocol, exchanges, transcript)."""

from __future__ import annotations

import base64

import pytest

from courriel.trace.redact import machine_for

PLAIN = base64.b64encode(b"\0alice@example.test\0s3cret-pw").decode()
LOGIN_USER = base64.b64encode(b"alice@example.test").decode()
LOGIN_PW = base64.b64encode(b"s3cret-pw").decode()
SCRAM_FIRST = base64.b64encode(b"n,,n=alice@example.test,r=abcdef").decode()
MSG = b"From: a@x\r\nSubject: hi\r\n\r\nsecret body line\r\nsecond\r\n"

# (direction, raw bytes) exchanges -> the transcript (direction, text) and the user noticed.
CASES: list[tuple[str, str, list[tuple[str, bytes]], list[tuple[str, str]], str | None]] = [
    ("smtp auth plain inline", "submission",
     [("s", b"220 hi\r\n"), ("c", f"AUTH PLAIN {PLAIN}\r\n".encode()), ("s", b"235 2.7.0 ok\r\n")],
     [("s", "220 hi"), ("c", f"AUTH PLAIN <redacted {len(PLAIN)} octets>"), ("s", "235 2.7.0 ok")],
     "alice@example.test"),
    ("smtp auth login", "submission",
     [("c", b"AUTH LOGIN\r\n"), ("s", b"334 VXNlcm5hbWU6\r\n"), ("c", f"{LOGIN_USER}\r\n".encode()),
      ("s", b"334 UGFzc3dvcmQ6\r\n"), ("c", f"{LOGIN_PW}\r\n".encode()), ("s", b"235 ok\r\n")],
     [("c", "AUTH LOGIN"), ("s", "334 VXNlcm5hbWU6"), ("c", f"<redacted {len(LOGIN_USER)} octets>"),
      ("s", "334 UGFzc3dvcmQ6"), ("c", f"<redacted {len(LOGIN_PW)} octets>"), ("s", "235 ok")],
     "alice@example.test"),
    ("smtp auth failure", "submission",
     [("c", f"AUTH PLAIN {PLAIN}\r\n".encode()), ("s", b"535 5.7.8 no\r\n")],
     [("c", f"AUTH PLAIN <redacted {len(PLAIN)} octets>"), ("s", "535 5.7.8 no")], None),
    ("smtp scram", "submission",
     [("c", b"AUTH SCRAM-SHA-256\r\n"), ("s", b"334 \r\n"), ("c", f"{SCRAM_FIRST}\r\n".encode()),
      ("s", b"334 cj1hYmM=\r\n"), ("c", b"Yz1iaXdz\r\n"), ("s", b"235 ok\r\n")],
     [("c", "AUTH SCRAM-SHA-256"), ("s", "334 "), ("c", f"<redacted {len(SCRAM_FIRST)} octets>"),
      ("s", "334 cj1hYmM="), ("c", "<redacted 8 octets>"), ("s", "235 ok")],
     "alice@example.test"),
    ("smtp pipelined data", "smtp",
     [("c", b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"), ("s", b"250 ok\r\n250 ok\r\n354 go\r\n"),
      ("c", MSG + b".\r\n"), ("s", b"250 queued\r\n"), ("c", b"QUIT\r\n")],
     [("c", "MAIL FROM:<a@x>"), ("c", "RCPT TO:<b@y>"), ("c", "DATA"), ("s", "250 ok"), ("s", "250 ok"),
      ("s", "354 go"), ("c", "From: a@x"), ("c", "Subject: hi"), ("c", ""), ("c", "<body: 24 octets>"),
      ("c", "."), ("s", "250 queued"), ("c", "QUIT")],
     None),
    ("smtp data refused", "smtp",
     [("c", b"DATA\r\n"), ("s", b"554 no recipients\r\n"), ("c", b"QUIT\r\n")],
     [("c", "DATA"), ("s", "554 no recipients"), ("c", "QUIT")], None),
    ("smtp bdat", "smtp",
     [("c", b"BDAT 20\r\nFrom: a@x\r\n\r\nbody1\r\n"), ("c", b"BDAT 8 LAST\r\nsecret\r\n"), ("c", b"QUIT\r\n")],
     [("c", "BDAT 20"), ("c", "From: a@x"), ("c", ""), ("c", "<body: 7 octets>"), ("c", "BDAT 8 LAST"),
      ("c", "<body: 8 octets>"), ("c", "QUIT")], None),
    ("imap login quoted", "imap",
     [("c", b'a1 LOGIN "alice@example.test" "s3cret-pw"\r\n'), ("s", b"a1 OK done\r\n")],
     [("c", 'a1 LOGIN "alice@example.test" <redacted 11 octets>'), ("s", "a1 OK done")], "alice@example.test"),
    ("imap login atoms", "imap",
     [("c", b"a1 login alice s3cret\r\n"), ("s", b"a1 NO bad\r\n")],
     [("c", "a1 login alice <redacted 6 octets>"), ("s", "a1 NO bad")], None),
    ("imap login literal password", "imap",
     [("c", b"a1 LOGIN alice {9}\r\n"), ("s", b"+ go\r\n"), ("c", b"s3cret-pw\r\n"), ("s", b"a1 OK\r\n")],
     [("c", "a1 LOGIN alice <redacted 3 octets>"), ("s", "+ go"), ("c", "<redacted 9 octets>"), ("c", ""),
      ("s", "a1 OK")], "alice"),
    ("imap login literal user", "imap",
     [("c", b"a1 LOGIN {5+}\r\nalice pw\r\n"), ("s", b"a1 OK\r\n")],
     [("c", "a1 LOGIN {5+}"), ("c", "alice"), ("c", " <redacted 2 octets>"), ("s", "a1 OK")], "alice"),
    ("imap authenticate", "imap",
     [("c", b"a2 AUTHENTICATE PLAIN\r\n"), ("s", b"+ \r\n"), ("c", f"{PLAIN}\r\n".encode()), ("s", b"a2 OK\r\n")],
     [("c", "a2 AUTHENTICATE PLAIN"), ("s", "+ "), ("c", f"<redacted {len(PLAIN)} octets>"), ("s", "a2 OK")],
     "alice@example.test"),
    ("imap authenticate sasl-ir", "imap",
     [("c", f"a2 AUTHENTICATE PLAIN {PLAIN}\r\n".encode()), ("s", b"a2 OK\r\n")],
     [("c", f"a2 AUTHENTICATE PLAIN <redacted {len(PLAIN)} octets>"), ("s", "a2 OK")], "alice@example.test"),
    ("imap append", "imap",
     [("c", f"a3 APPEND INBOX {{{len(MSG)}}}\r\n".encode()), ("s", b"+ Ready\r\n"), ("c", MSG + b"\r\n"),
      ("s", b"a3 OK\r\n")],
     [("c", f"a3 APPEND INBOX {{{len(MSG)}}}"), ("s", "+ Ready"), ("c", "From: a@x"), ("c", "Subject: hi"),
      ("c", ""), ("c", "<body: 26 octets>"), ("c", ""), ("s", "a3 OK")], None),
    ("imap fetch body", "imap",
     [("c", b"a4 FETCH 1 (BODY[] BODY[HEADER] BODY[TEXT])\r\n"),
      ("s", f"* 1 FETCH (BODY[] {{{len(MSG)}}}\r\n".encode() + MSG + b" BODY[HEADER] {11}\r\nFrom: a@x\r\n"
            b" BODY[TEXT] {6}\r\nsecret)\r\na4 OK\r\n")],
     [("c", "a4 FETCH 1 (BODY[] BODY[HEADER] BODY[TEXT])"), ("s", f"* 1 FETCH (BODY[] {{{len(MSG)}}}"),
      ("s", "From: a@x"), ("s", "Subject: hi"), ("s", ""), ("s", "<body: 26 octets>"), ("s", " BODY[HEADER] {11}"),
      ("s", "From: a@x"), ("s", " BODY[TEXT] {6}"), ("s", "<body: 6 octets>"), ("s", ")"), ("s", "a4 OK")], None),
    ("imap fetch rfc822 partial", "imap",
     [("s", b"* 1 FETCH (RFC822 {6}\r\nA: b\r\n BODY[]<0> {3}\r\nxyz)\r\n")],
     [("s", "* 1 FETCH (RFC822 {6}"), ("s", "A: b"), ("s", " BODY[]<0> {3}"), ("s", "<body: 3 octets>"),
      ("s", ")")], None),
    ("imap compress stops", "imap",
     [("c", b"a5 COMPRESS DEFLATE\r\n"), ("s", b"a5 OK\r\n"), ("c", b"\x78\x9c garbage\r\n")],
     [("c", "a5 COMPRESS DEFLATE"), ("s", "a5 OK"),
      ("event", "COMPRESS=DEFLATE active: the rest of the session is compressed, not transcribed")], None),
    ("pop3 user pass retr", "pop3",
     [("s", b"+OK hi\r\n"), ("c", b"USER alice\r\n"), ("s", b"+OK\r\n"), ("c", b"PASS s3cret pw\r\n"),
      ("s", b"+OK in\r\n"), ("c", b"RETR 1\r\n"), ("s", b"+OK 60\r\n" + MSG + b"..dot\r\n.\r\n"),
      ("c", b"LIST\r\n"), ("s", b"+OK\r\n1 60\r\n.\r\n")],
     [("s", "+OK hi"), ("c", "USER alice"), ("s", "+OK"), ("c", "PASS <redacted 9 octets>"), ("s", "+OK in"),
      ("c", "RETR 1"), ("s", "+OK 60"), ("s", "From: a@x"), ("s", "Subject: hi"), ("s", ""),
      ("s", "<body: 31 octets>"), ("s", "."), ("c", "LIST"), ("s", "+OK"), ("s", "1 60"), ("s", ".")], "alice"),
    ("pop3 apop", "pop3",
     [("c", b"APOP bob c4c9334bac560ecc979e58001b3e22fb\r\n"), ("s", b"+OK\r\n")],
     [("c", "APOP bob <redacted 32 octets>"), ("s", "+OK")], "bob"),
    ("pop3 auth plain", "pop3",
     [("c", b"AUTH PLAIN\r\n"), ("s", b"+ \r\n"), ("c", f"{PLAIN}\r\n".encode()), ("s", b"+OK\r\n"),
      ("c", b"TOP 1 0\r\n"), ("s", b"+OK\r\nA: b\r\n\r\n.\r\n")],
     [("c", "AUTH PLAIN"), ("s", "+ "), ("c", f"<redacted {len(PLAIN)} octets>"), ("s", "+OK"), ("c", "TOP 1 0"),
      ("s", "+OK"), ("s", "A: b"), ("s", ""), ("s", ".")], "alice@example.test"),
    ("managesieve authenticate", "managesieve",
     [("c", f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n'.encode()), ("s", b"OK\r\n"),
      ("c", b'PUTSCRIPT "s" {4+}\r\nkeep\r\n'), ("s", b"OK\r\n")],
     [("c", f'AUTHENTICATE "PLAIN" <redacted {len(PLAIN) + 2} octets>'), ("s", "OK"),
      ("c", 'PUTSCRIPT "s" {4+}'), ("c", "keep"), ("c", ""), ("s", "OK")], "alice@example.test"),
    ("managesieve authenticate literal", "managesieve",
     [("c", f'AUTHENTICATE "PLAIN" {{{len(PLAIN)}+}}\r\n{PLAIN}\r\n'.encode()), ("s", b"NO\r\n")],
     [("c", f'AUTHENTICATE "PLAIN" <redacted {len(str(len(PLAIN))) + 3} octets>'),
      ("c", f"<redacted {len(PLAIN)} octets>"), ("c", ""), ("s", "NO")], None),
]


@pytest.mark.parametrize(("name", "listener", "exchanges", "expected", "user"), CASES, ids=[c[0] for c in CASES])
def test_redaction(name: str, listener: str, exchanges: list[tuple[str, bytes]],
                   expected: list[tuple[str, str]], user: str | None) -> None:  # fmt: skip
    m = machine_for(listener)
    out = []
    for d, data in exchanges:
        out += m.feed(d, data)
    assert out == expected
    assert m.user == user
    joined = "\n".join(text for _, text in out)
    assert "s3cret" not in joined and PLAIN not in joined and LOGIN_PW not in joined and "secret body" not in joined


@pytest.mark.parametrize(("name", "listener", "exchanges", "expected", "user"), CASES, ids=[c[0] for c in CASES])
def test_redaction_bytewise(name: str, listener: str, exchanges: list[tuple[str, bytes]],
                            expected: list[tuple[str, str]], user: str | None) -> None:  # fmt: skip
    """The same streams one octet at a time (TCP may split anywhere) give the same transcript."""
    m = machine_for(listener)
    out = []
    for d, data in exchanges:
        for i in range(len(data)):
            out += m.feed(d, data[i : i + 1])
    assert out == expected


def test_long_line_is_cut() -> None:
    m = machine_for("smtp")
    out = m.feed("c", b"X" * 40000)
    assert [len(t) for _, t in out] == [16384, 16384]
    assert m.feed("c", b"\r\n") == [("c", "X" * (40000 - 32768))]
