"""A corpus of raw messages built by the tests (no downloads), shared by the test files.

Messages are written with "\\n" and turned into CRLF by ``crlf`` unless the test is
about bare line feeds.
"""

from __future__ import annotations


def crlf(text: bytes) -> bytes:
    return text.replace(b"\n", b"\r\n")


SIMPLE = crlf(
    b"""From: Alice Example <alice@example.com>
To: bob@example.org
Subject: Hello
Date: Mon, 7 Feb 1994 21:52:25 -0800
Message-ID: <1234@local.machine.example>

Hi Bob,
This is a test.
"""
)

# mixed > alternative > related, with a preamble and an epilogue.
NESTED = crlf(
    b"""From: Alice <alice@example.com>
To: Bob <bob@example.org>
Subject: Nested
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 au lait
--alt
Content-Type: multipart/related; boundary="rel"; type="text/html"

--rel
Content-Type: text/html; charset=utf-8

<p>Caf&eacute; <img src="cid:img1@x"></p>
--rel
Content-Type: image/png
Content-ID: <img1@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--rel--
--alt--
--outer
Content-Type: application/pdf; name="doc.pdf"
Content-Disposition: attachment; filename="doc.pdf"
Content-Transfer-Encoding: base64

JVBERi0=
--outer--
Epilogue.
"""
)

# The encapsulated message of FORWARDED, on its own.
INNER = crlf(
    b"""From: Eve <eve@example.net>
To: carol@example.com
Subject: Report
Date: Tue, 1 Jul 2003 10:52:37 +0200
Content-Type: multipart/mixed; boundary="b2"

--b2
Content-Type: text/plain; charset=us-ascii

The report.
--b2
Content-Type: text/csv; name="r.csv"

a,b
1,2
--b2--"""
)

FORWARDED = (
    crlf(
        b"""From: Carol <carol@example.com>
To: dave@example.com
Subject: Fwd: Report
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

See below.
--b1
Content-Type: message/rfc822
Content-Description: forwarded

"""
    )
    + INNER
    + b"\r\n--b1--\r\n"
)

# The last part is never closed; a line that only starts with the boundary is content.
UNCLOSED = crlf(
    b"""Subject: broken
Content-Type: multipart/mixed; boundary=zz

--zz
Content-Type: text/plain

first
--zzz is not a delimiter
--zz
Content-Type: text/plain

second, never closed
"""
)

# The boundary never appears.
NO_DELIMITER = crlf(
    b"""Subject: no parts
Content-Type: multipart/mixed; boundary="nowhere"

just text
"""
)

# Raw 8-bit headers: UTF-8 in From, Latin-1 in Subject (RFC 6532 and legacy).
EIGHT_BIT_HEADERS = crlf(
    b"""From: J\xc3\xa9r\xc3\xb4me <jerome@example.com>
Subject: Caf\xe9 cr\xe8me
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e
"""
)

RFC2231 = crlf(
    b"""Subject: params
Content-Type: multipart/mixed; boundary=p

--p
Content-Type: text/plain; name*=iso-8859-1'fr'caf%E9.txt;
 title*0="part one "; title*1="part two"
Content-Disposition: attachment;
 filename*0*=UTF-8''%E2%82%AC%20rates;
 filename*1*=%20%C3%A9t%C3%A9.txt
Content-Transfer-Encoding: 7bit

x
--p--
"""
)

ENCODED_WORDS = crlf(
    b"""From: =?UTF-8?Q?J=C3=A9r=C3=B4me?= <jerome@example.com>,
 =?KOI8-R?B?6dfBziDwxdTSz9c=?= <ivan@example.ru>
To: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?= <taro@example.jp>,
 "=?ISO-8859-15?Q?=A4uro?= Desk" <euro@example.eu>
Cc: Undisclosed recipients:;
Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?KOI8-R?B?8NLJ18XU?=
 =?UTF-8?Q?_split_=C3?= =?UTF-8?Q?=A9?=
Content-Type: text/plain

body
"""
)

# (charset, body text) for bodies in each charset.
CHARSET_BODIES: list[tuple[str, str]] = [
    ("utf-8", "Crème brûlée, 日本, Привет"),
    ("iso-8859-15", "Ça coûte 5 €"),
    ("koi8-r", "Привет, мир!"),
    ("iso-2022-jp", "こんにちは世界"),
]


def charset_message(charset: str, text: str) -> bytes:
    return (
        crlf(
            f"Subject: {charset}\nContent-Type: text/plain; charset={charset}\n"
            "Content-Transfer-Encoding: 8bit\n\n".encode("ascii")
        )
        + text.encode(charset)
        + b"\r\n"
    )


BARE_LF = b"""From: lf@example.com
Subject: bare LF
Content-Type: multipart/alternative; boundary=lf

--lf
Content-Type: text/plain

line one
line two
--lf
Content-Type: text/html

<b>bold</b>
--lf--
"""

NO_BODY = b"From: a@example.com\r\nSubject: header only\r\n"
EMPTY_BODY = b"From: a@example.com\r\nSubject: empty body\r\n\r\n"

DIGEST = crlf(
    b"""Subject: digest
Content-Type: multipart/digest; boundary=d

--d

Subject: one

first
--d
Content-Type: text/plain

not a message
--d--
"""
)

NUL_AND_JUNK = b"Subject: a\x00b\r\nnot a header line\r\n X-continued\r\n\r\nbody\x00\xff\r\n"


def nested(depth: int) -> bytes:
    """``depth`` multiparts nested in each other, a text part at the bottom."""
    head = b""
    tail = b""
    for i in range(depth):
        head += f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n".encode()
        tail = f"\r\n--b{i}--\r\n".encode() + tail
    return b"Subject: deep\r\n" + head + b"Content-Type: text/plain\r\n\r\nbottom" + tail


CORPUS: dict[str, bytes] = {
    "simple": SIMPLE,
    "nested": NESTED,
    "inner": INNER,
    "forwarded": FORWARDED,
    "unclosed": UNCLOSED,
    "no_delimiter": NO_DELIMITER,
    "eight_bit_headers": EIGHT_BIT_HEADERS,
    "rfc2231": RFC2231,
    "encoded_words": ENCODED_WORDS,
    "bare_lf": BARE_LF,
    "no_body": NO_BODY,
    "empty_body": EMPTY_BODY,
    "digest": DIGEST,
    "nul_and_junk": NUL_AND_JUNK,
    "deep": nested(120),
    **{f"charset_{cs}": charset_message(cs, text) for cs, text in CHARSET_BODIES},
}
