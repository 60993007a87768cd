"""Compose a message: headers, text and HTML alternatives, attachments, inline images.

Structure written (only the levels needed):
    multipart/mixed
      multipart/alternative
        text/plain
        multipart/related          (when inline images are given with an HTML part)
          text/html
          image/... (Content-ID)
      attachments...

Output uses CRLF line endings, lines of at most 998 octets (RFC 5322 §2.1.1) and, in
headers, 78 columns where words allow. Text charsets: US-ASCII when the text fits, else
the requested charset when it can encode the text, else UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from .address import parse_addresses
from .charset import codec_name, is_ascii_compatible, mime_name
from .encode import (
    encode_mailbox,
    encode_name_param,
    encode_param,
    encode_unstructured,
    fold,
)
from .encode import printable as _printable

AddressLike = str | tuple[str, str]
Addresses = AddressLike | Sequence[AddressLike] | None
Entity = tuple[list[str], bytes]  # (header lines with CRLF, body)

_MAX_LINE = 998


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to attach. ``content_type`` is guessed from the file name when None.
    Inline images give ``content_id`` (without angle brackets) and ``inline=True``."""

    filename: str
    data: bytes
    content_type: str | None = None
    content_id: str | None = None
    inline: bool = False


def choose_charset(text: str, requested: str) -> str:
    """US-ASCII when the text is ASCII, else ``requested`` when it encodes the text
    (and is ASCII-compatible), else UTF-8. Returns the MIME name."""
    if text.isascii():
        return "us-ascii"
    name = codec_name(requested)
    if name is not None and name != "utf-8" and is_ascii_compatible(name):
        try:
            if text.encode(name).decode(name) == text:  # some codecs map lossily
                return mime_name(requested)
        except (UnicodeError, LookupError):
            pass
    return "utf-8"


def _max_line(payload: bytes) -> int:
    return max((len(line) for line in payload.split(b"\r\n")), default=0)


def _encode_body(payload: bytes, allow_8bit: bool, is_text: bool) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body) for a payload with CRLF line ends."""
    safe_lines = _max_line(payload) <= _MAX_LINE and b"\0" not in payload
    if is_text and safe_lines:
        if payload.isascii():
            return "7bit", payload
        if allow_8bit:
            return "8bit", payload
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    if is_text:
        # Quoted-printable keeps mostly-ASCII text readable (RFC 2045 §6.7); use it
        # unless it is much longer than base64: Latin-script prose stays near 1x,
        # Cyrillic, Greek or CJK text is 1.5x to 2.3x.
        qp = binascii.b2a_qp(payload.replace(b"\r\n", b"\n"), istext=True)
        qp = qp.replace(b"\n", b"\r\n")
        if len(qp) * 10 <= len(b64) * 13:
            return "quoted-printable", qp
    return "base64", b64


def _text_entity(text: str, subtype: str, charset: str, allow_8bit: bool) -> Entity:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    cs = choose_charset(text, charset)
    payload = text.encode(codec_name(cs) or "ascii").replace(b"\n", b"\r\n")
    cte, body = _encode_body(payload, allow_8bit, True)
    headers = [
        f"Content-Type: text/{subtype}; charset={cs}\r\n",
        f"Content-Transfer-Encoding: {cte}\r\n",
    ]
    return headers, body


def _attachment_entity(att: Attachment, utf8: bool, allow_8bit: bool) -> Entity:
    ctype = att.content_type or mimetypes.guess_type(att.filename)[0] or "application/octet-stream"
    ctype = ctype.lower()
    headers: list[str] = []
    params = encode_name_param(att.filename, utf8=utf8) if att.filename else []
    headers.append(fold("Content-Type", "; ".join([ctype, *params])))
    disp = "inline" if att.inline else "attachment"
    dparams = encode_param("filename", att.filename, utf8=utf8) if att.filename else []
    headers.append(fold("Content-Disposition", "; ".join([disp, *dparams])))
    if att.content_id:
        headers.append(fold("Content-ID", f"<{att.content_id.strip('<>')}>"))
    data = att.data
    if ctype in ("message/rfc822", "message/global"):
        # RFC 2046 §5.2.1: message/rfc822 allows only 7bit, 8bit or binary; base64 is
        # the last resort here (RFC 6532 §3.5 allows it for message/global).
        cte, body = _encode_body(
            data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), allow_8bit, True
        )
        if cte == "quoted-printable":
            cte, body = "base64", base64.encodebytes(data).replace(b"\n", b"\r\n")
    else:
        cte, body = "base64", base64.encodebytes(data).replace(b"\n", b"\r\n")
    headers.append(f"Content-Transfer-Encoding: {cte}\r\n")
    return headers, body


def _serialize(entity: Entity) -> bytes:
    headers, body = entity
    return "".join(headers).encode("utf-8") + b"\r\n" + body


def _multipart(subtype: str, parts: list[Entity]) -> Entity:
    raw = [_serialize(p) for p in parts]
    while True:
        boundary = "=_" + secrets.token_hex(12)
        marker = b"--" + boundary.encode("ascii")
        if not any(marker in r for r in raw):
            break
    chunks: list[bytes] = []
    for r in raw:
        # RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter.
        chunks += [marker, b"\r\n", r, b"\r\n"]
    chunks += [marker, b"--\r\n"]
    headers = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n']
    return headers, b"".join(chunks)


def _mailboxes(items: Addresses) -> list[tuple[str, str]]:
    """One address (a string or a (name, addr) pair) or a list of them."""
    if items is None:
        return []
    one: list[AddressLike]
    if isinstance(items, str):
        one = [items]
    elif isinstance(items, tuple) and len(items) == 2 and all(isinstance(x, str) for x in items):
        one = [(str(items[0]), str(items[1]))]
    else:
        one = list(items)
    out: list[tuple[str, str]] = []
    for item in one:
        if isinstance(item, tuple):
            out.append((item[0] or "", item[1]))
        elif "<" in item:
            out.extend(parse_addresses(item))
        else:
            out.append(("", item.strip()))
    return out


def _msg_id(value: str) -> str:
    return "<" + value.strip().strip("<>") + ">"


def compose_message(
    *,
    from_: Addresses,
    to: Addresses = None,
    cc: Addresses = None,
    bcc: Addresses = None,
    reply_to: Addresses = None,
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    inline: Sequence[Attachment] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    message_id: str | None = None,
    domain: str | None = None,
    date: datetime | None = None,
    charset: str = "utf-8",
    keep_bcc: bool = False,
    allow_8bit: bool = False,
    smtputf8: bool = False,
) -> bytes:
    """Build a complete message (RFC 5322, MIME). Addresses are ``"addr@host"``,
    ``"Name <addr@host>"`` or ``(name, addr)``. Bcc is written only with ``keep_bcc``.
    ``smtputf8`` writes UTF-8 headers raw (RFC 6532) instead of RFC 2047 words.
    Raises ValueError for input that cannot be written (no From, bad header name,
    non-ASCII local part without ``smtputf8``)."""
    senders = _mailboxes(from_)
    if not senders:
        raise ValueError("a From address is required")
    utf8 = smtputf8
    out: list[str] = []

    def addr_header(name: str, items: list[tuple[str, str]]) -> None:
        if items:
            limit = min(75, 76 - len(name))
            value = ", ".join(
                encode_mailbox(n, a, charset, utf8=utf8, limit=limit) for n, a in items
            )
            out.append(fold(name, value))

    when = date if date is not None else datetime.now().astimezone()
    out.append(fold("Date", format_datetime(when)))
    addr_header("From", senders)
    addr_header("Reply-To", _mailboxes(reply_to))
    addr_header("To", _mailboxes(to))
    addr_header("Cc", _mailboxes(cc))
    if keep_bcc:
        addr_header("Bcc", _mailboxes(bcc))
    if subject is not None:
        value = encode_unstructured(subject, charset, utf8=utf8, limit=min(75, 78 - 9))
        out.append(fold("Subject", value))
    if message_id is None:
        host = domain or senders[0][1].rpartition("@")[2] or "localhost"
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        message_id = f"{int(time.time() * 1000):x}.{secrets.token_hex(8)}@{host}"
    out.append(fold("Message-ID", _msg_id(message_id)))
    if in_reply_to:
        out.append(fold("In-Reply-To", _msg_id(in_reply_to)))
    if references:
        out.append(fold("References", " ".join(_msg_id(r) for r in references)))
    out.append("MIME-Version: 1.0\r\n")
    for name, value in headers:
        if not name or any(not (33 <= ord(c) <= 126) or c == ":" for c in name):
            raise ValueError(f"invalid header name {name!r}")
        if not (_printable(value, utf8) and max(map(len, value.split(" ")), default=0) < 900):
            limit = max(20, min(75, 76 - len(name)))
            value = encode_unstructured(value, charset, utf8=utf8, limit=limit)
        out.append(fold(name, value))

    body = _body_entity(text, html, attachments, inline, charset, allow_8bit, utf8)
    return "".join(out).encode("utf-8") + _serialize(body)


def _body_entity(
    text: str | None,
    html: str | None,
    attachments: Sequence[Attachment],
    inline: Sequence[Attachment],
    charset: str,
    allow_8bit: bool,
    utf8: bool,
) -> Entity:
    html_part: Entity | None = None
    if html is not None:
        html_part = _text_entity(html, "html", charset, allow_8bit)
        related = [_attachment_entity(a, utf8, allow_8bit) for a in inline]
        if related:
            html_part = _multipart("related", [html_part, *related])
            inline = ()
    if text is None and html_part is not None:
        main = html_part
    else:
        main = _text_entity(text or "", "plain", charset, allow_8bit)
        if html_part is not None:
            main = _multipart("alternative", [main, html_part])
    rest = [_attachment_entity(a, utf8, allow_8bit) for a in (*inline, *attachments)]
    if rest:
        main = _multipart("mixed", [main, *rest])
    return main
