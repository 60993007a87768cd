"""Test messages built with the stdlib email package, and what IMAP must say about them.

The expected ENVELOPE, BODYSTRUCTURE and section bytes are computed here from the raw bytes
with a small boundary splitter of our own (RFC 2046 §5.1.1: the CRLF before a delimiter
belongs to the delimiter), never with courriel's MIME code, so a bug there cannot hide.
Values are in the shape imapclient's response parser gives (bytes, tuples, None, int).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses
from typing import Any

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 3 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256))) * 2
HTML = "<html><body><p>Prix : 12&nbsp;€ — <b>déjà</b> payé.</p></body></html>\n"
PLAIN_TEXT = "Bonjour Alice,\n\nLe prix est de 12 € — déjà payé. " + "Une ligne assez longue. " * 6 + "\n\n-- \nJean\n"


def simple_message() -> bytes:
    """A single-part text message with non-ASCII headers, a group, Sender and Reply-To."""
    m = EmailMessage(policy=SMTP)
    m["From"] = '"Dupont, Jean" <jean.dupont@example.org>'
    m["Sender"] = "secretary@example.org"
    m["Reply-To"] = "Replies <replies@example.org>"
    m["To"] = "alice@example.test, Bob Martin <bob@example.test>"
    m["Cc"] = "Friends: carol@example.net, dave@example.net;, eve@example.net"
    m["Subject"] = "Grüße aus Köln"
    m["Date"] = "Mon, 02 Mar 2026 10:11:12 +0100"
    m["Message-ID"] = "<plain.1@example.org>"
    m["In-Reply-To"] = "<parent.0@example.org>"
    m.set_content("Grüße aus Köln!\nZweite Zeile.\n", charset="utf-8", cte="8bit")
    return m.as_bytes()


def inner_message() -> EmailMessage:
    m = EmailMessage(policy=SMTP)
    m["From"] = "Forwarded Person <fwd@example.com>"
    m["To"] = "jean.dupont@example.org"
    m["Subject"] = "the original"
    m["Date"] = "Sun, 01 Mar 2026 08:00:00 +0000"
    m["Message-ID"] = "<inner.1@example.com>"
    m.set_content("This is the forwarded message.\nIt has two lines.\n")
    return m


def mixed_message() -> bytes:
    """multipart/mixed: (alternative: plain QP, html base64), pdf, forwarded message, inline png."""
    m = EmailMessage(policy=SMTP)
    m["From"] = "Jean Dupont <jean.dupont@example.org>"
    m["To"] = "alice@example.test"
    m["Subject"] = "=?utf-8?b?UmFwcG9ydCBkJ8OpdMOp?= with attachments"
    m["Date"] = "Tue, 03 Mar 2026 09:00:00 -0500"
    m["Message-ID"] = "<mixed.1@example.org>"
    m.set_content(PLAIN_TEXT, charset="utf-8", cte="quoted-printable")
    m.add_alternative(HTML, subtype="html", charset="utf-8", cte="base64")
    m.add_attachment(PDF, maintype="application", subtype="pdf", filename="rapport été.pdf")
    m.add_attachment(inner_message())
    m.add_attachment(PNG, maintype="image", subtype="png", disposition="inline", cid="<logo.1@example.org>")
    parts = m.get_payload()
    assert isinstance(parts, list)
    logo = parts[-1]
    assert isinstance(logo, EmailMessage)
    logo["Content-Description"] = "the logo"
    return m.as_bytes()


# --- an independent reading of the raw bytes ----------------------------------------------


def split_header(raw: bytes) -> tuple[bytes, bytes]:
    """(header including the blank line, body) of an entity."""
    if raw.startswith(b"\r\n"):
        return b"\r\n", raw[2:]
    head, sep, body = raw.partition(b"\r\n\r\n")
    return head + sep, body


def header_lines(header: bytes) -> list[tuple[str, bytes]]:
    """(lower-case name, raw field with folding and its CRLF) for each field of a header block."""
    fields: list[tuple[str, bytes]] = []
    for line in header.split(b"\r\n")[:-2] if header.endswith(b"\r\n\r\n") else header.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            name, prev = fields[-1]
            fields[-1] = (name, prev + line + b"\r\n")
        else:
            fields.append((line.split(b":", 1)[0].strip().decode().lower(), line + b"\r\n"))
    return fields


def field_value(header: bytes, name: str) -> str | None:
    for n, raw in header_lines(header):
        if n == name:
            value = raw.split(b":", 1)[1]
            return re.sub(rb"\r\n(?=[ \t])", b"", value).strip().decode()
    return None


def header_fields(raw: bytes, names: list[str], *, not_: bool = False) -> bytes:
    """BODY[HEADER.FIELDS (names)] or BODY[HEADER.FIELDS.NOT (names)] of an entity."""
    wanted = {n.lower() for n in names}
    header, _ = split_header(raw)
    return b"".join(r for n, r in header_lines(header) if (n in wanted) != not_) + b"\r\n"


def params(value: str | None) -> dict[str, str]:
    """Content-Type / Content-Disposition parameters, quotes removed (no RFC 2231 decoding)."""
    out: dict[str, str] = {}
    if value is None:
        return out
    for m in re.finditer(r';\s*([^=\s;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)', value):
        v = m.group(2)
        out[m.group(1).lower()] = v[1:-1].replace('\\"', '"') if v.startswith('"') else v
    return out


def children(body: bytes, boundary: str) -> list[bytes]:
    """The body parts of a multipart body (RFC 2046 §5.1.1)."""
    delim = b"\r\n--" + boundary.encode()
    pieces = (b"\r\n" + body).split(delim)
    out = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        out.append(piece.split(b"\r\n", 1)[1])
    return out


@dataclass
class Entity:
    """One MIME entity as the raw bytes say."""

    raw: bytes

    @property
    def header(self) -> bytes:
        return split_header(self.raw)[0]

    @property
    def body(self) -> bytes:
        return split_header(self.raw)[1]

    def field(self, name: str) -> str | None:
        return field_value(self.header, name)

    @property
    def ctype(self) -> tuple[str, str, dict[str, str]]:
        value = self.field("content-type")
        if value is None:
            return "text", "plain", {"charset": "us-ascii"}
        main, _, sub = value.split(";", 1)[0].strip().partition("/")
        return main.lower(), sub.lower(), params(value)

    @property
    def parts(self) -> list[Entity]:
        main, _, p = self.ctype
        if main == "multipart":
            return [Entity(c) for c in children(self.body, p["boundary"])]
        if main == "message":
            return [Entity(self.body)]
        return []

    def section(self, path: str) -> Entity:
        """The entity a section number names (RFC 9051 §6.4.5); its .body is BODY[path]."""
        node = self
        for n in (int(x) for x in path.split(".")):
            if node is not self and node.ctype[0] == "message":
                node = node.parts[0]  # numbers after a message/rfc822 part go into its message
            if node.ctype[0] == "multipart":
                node = node.parts[n - 1]
            elif n != 1:
                raise ValueError(f"no part {path}")
        return node

    def mime_header(self) -> bytes:
        return self.header


def text_lines(body: bytes) -> int:
    """Lines of a body; an unterminated last line counts (RFC 9051 §7.5.2 body-fld-lines)."""
    return body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


def nstr(v: str | None) -> bytes | None:
    return None if v is None else v.encode()


Addr = tuple[bytes | None, None, bytes | None, bytes | None]


def _top_level(value: str, seps: str) -> list[tuple[str, str]]:
    """Split at separators outside quotes, comments and angle brackets: (piece, separator)."""
    out, cur, depth, quoted, angle = [], "", 0, False, False
    i = 0
    while i < len(value):
        c = value[i]
        if quoted:
            cur += c
            if c == "\\" and i + 1 < len(value):
                cur += value[i + 1]
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted, cur = True, cur + c
        elif c == "(":
            depth, cur = depth + 1, cur + c
        elif c == ")":
            depth, cur = depth - 1, cur + c
        elif c in "<>":
            angle, cur = c == "<", cur + c
        elif c in seps and not depth and not angle:
            out.append((cur, c))
            cur = ""
        else:
            cur += c
        i += 1
    out.append((cur, ""))
    return out


def _mailboxes(text: str) -> list[Addr]:
    out: list[Addr] = []
    for name, addr in getaddresses([text]):
        if not addr:
            continue
        mailbox, _, host = addr.partition("@")
        out.append((nstr(name or None), None, nstr(mailbox), nstr(host)))
    return out


def addresses(value: str | None) -> tuple[Addr, ...] | None:
    """ENVELOPE address list of a header value, groups as RFC 9051 §7.5.2 says."""
    if value is None:
        return None
    out: list[Addr] = []
    rest = value
    while rest.strip():
        pieces = _top_level(rest, ":,")
        head, sep = pieces[0]
        if sep == ":":  # "display-name:" starts a group, ";" ends it
            body = rest[len(head) + 1 :]
            inner = _top_level(body, ";")[0][0]
            out.append((None, None, head.strip().encode(), None))
            out.extend(_mailboxes(inner))
            out.append((None, None, None, None))
            rest = body[len(inner) + 1 :].lstrip().removeprefix(",")
        else:
            out.extend(_mailboxes(head))
            rest = rest[len(head) + 1 :] if sep else ""
    return tuple(out) or None


def envelope(e: Entity) -> tuple[Any, ...]:
    """The ENVELOPE of an entity without group syntax (RFC 9051 §7.5.2)."""
    frm = addresses(e.field("from"))
    sender = addresses(e.field("sender")) or frm
    reply_to = addresses(e.field("reply-to")) or frm
    return (
        nstr(e.field("date")), nstr(e.field("subject")), frm, sender, reply_to,
        addresses(e.field("to")), addresses(e.field("cc")), addresses(e.field("bcc")),
        nstr(e.field("in-reply-to")), nstr(e.field("message-id")),
    )  # fmt: skip


def bodystructure(e: Entity, extension: bool = True) -> tuple[Any, ...]:
    """BODYSTRUCTURE (or BODY when extension is False) of an entity, as plain tuples."""
    main, sub, p = e.ctype
    # body-fld-param is NIL when there are none ("()" is not in the grammar, §9)
    plist = tuple(sorted((k.encode(), v.encode()) for k, v in p.items())) or None
    if main == "multipart":  # on the wire: (part)(part)... "subtype" [extension data]
        kids = tuple(bodystructure(c, extension) for c in e.parts)
        if not extension:
            return (*kids, sub.encode())
        return (*kids, sub.encode(), plist, disposition(e), nstr(e.field("content-language")), nstr(e.field("content-location")))
    enc = (e.field("content-transfer-encoding") or "7bit").lower()
    fields: tuple[Any, ...] = (
        main.encode(), sub.encode(), plist, nstr(e.field("content-id")), nstr(e.field("content-description")),
        enc.encode(), len(e.body),
    )  # fmt: skip
    if main == "message" and sub == "rfc822":
        inner = e.parts[0]
        fields += (envelope(inner), bodystructure(inner, extension), text_lines(e.body))
    elif main == "text":
        fields += (text_lines(e.body),)
    if extension:
        fields += (nstr(e.field("content-md5")), disposition(e), nstr(e.field("content-language")), nstr(e.field("content-location")))
    return fields


def disposition(e: Entity) -> tuple[bytes, tuple[tuple[bytes, bytes], ...] | None] | None:
    value = e.field("content-disposition")
    if value is None:
        return None
    kind = value.split(";", 1)[0].strip().lower()
    return (kind.encode(), tuple(sorted((k.encode(), v.encode()) for k, v in params(value).items())) or None)


# --- comparing with what a server said ------------------------------------------------------


def _pairs(flat: Any) -> tuple[tuple[bytes, bytes], ...] | None:
    """A parameter list, flat as on the wire or as pairs, normalised: names lower-case,
    charset values lower-case, RFC 2231 ``name*=utf-8''...`` decoded (servers may or may not)."""
    if flat is None:
        return None
    items = list(flat) if flat and isinstance(flat[0], tuple) else list(zip(flat[::2], flat[1::2]))
    out = []
    for k, v in items:
        name = k.decode().lower()
        value = v.decode("utf-8", "replace")
        if name.endswith("*") and "''" in value:
            from urllib.parse import unquote

            name, value = name[:-1], unquote(value.split("''", 1)[1])
        if name == "charset":
            value = value.lower()
        out.append((name.encode(), value.encode()))
    return tuple(sorted(out))


def _low(v: Any) -> Any:
    return v.lower() if isinstance(v, bytes) else v


def normalize_body(bs: Any) -> Any:
    """A BODY/BODYSTRUCTURE value with the parts that are case-insensitive made canonical."""
    if isinstance(bs[0], (tuple, list)):  # multipart: the parts, then the subtype
        n = next(i for i, v in enumerate(bs) if not isinstance(v, (tuple, list)))
        kids = tuple(normalize_body(k) for k in bs[:n])
        rest = list(bs[n:])
        out: list[Any] = [*kids, _low(rest[0])]
        if len(rest) > 1:
            out.append(_pairs(rest[1]))
        if len(rest) > 2:
            out.append(_disposition(rest[2]))
        out.extend(rest[3:])
        return tuple(out)
    out = [_low(bs[0]), _low(bs[1]), _pairs(bs[2]), bs[3], bs[4], _low(bs[5]), bs[6]]
    i = 7
    if bs[0].lower() == b"message" and bs[1].lower() == b"rfc822":
        out += [bs[7], normalize_body(bs[8]), bs[9]]
        i = 10
    elif bs[0].lower() == b"text":
        out.append(bs[7])
        i = 8
    if len(bs) > i:
        out.append(bs[i])  # md5
    if len(bs) > i + 1:
        out.append(_disposition(bs[i + 1]))
    out.extend(bs[i + 2 :])
    return tuple(out)


def _disposition(d: Any) -> Any:
    if d is None:
        return None
    return (d[0].lower(), _pairs(d[1]))
