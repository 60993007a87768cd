"""Decoded content: transfer decoding, text of parts, HTML to text, JMAP body lists, preview.

All functions read slices of the stored raw message through a part's offsets; none
re-parse the message.
"""

from __future__ import annotations

import binascii
import html
import re

from .charset import decode_bytes
from .structure import BodyPart

PREVIEW_CHARS = 256  # RFC 8970 §3: at most 256 characters
TEXT_LIMIT = 1 << 20  # characters of text kept for the full-text index

_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _b64decode(body: bytes) -> bytes:
    try:
        return binascii.a2b_base64(body)
    except (binascii.Error, ValueError):
        pass
    # Broken padding or stray characters: keep the alphabet, fix the length.
    clean = _B64_JUNK.sub(b"", body)
    rem = len(clean) % 4
    if rem == 1:
        clean = clean[:-1]
    elif rem:
        clean += b"=" * (4 - rem)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def transfer_decode(body: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6); unknown encodings pass through."""
    enc = encoding.lower()
    if enc == "base64":
        return _b64decode(body)
    if enc == "quoted-printable":
        return binascii.a2b_qp(body)
    return body


def decode_part(data: bytes, part: BodyPart, limit: int | None = None) -> bytes:
    """The body of ``part`` with its transfer encoding undone (IMAP BINARY, JMAP blobs).

    ``limit`` bounds the encoded octets read (for previews and indexing)."""
    end = part.end if limit is None else min(part.end, part.body_start + limit)
    return transfer_decode(data[part.body_start : end], part.encoding)


def part_text(data: bytes, part: BodyPart, limit: int | None = None) -> str:
    """The body of a text part decoded to Unicode with its charset; line breaks as "\\n"."""
    text = decode_bytes(decode_part(data, part, limit), part.charset)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text


_DROP_BLOCKS = re.compile(
    r"<!--.*?(?:-->|$)|<(script|style|head|title)\b[^<>]*>.*?(?:</\1\s*>|$)",
    re.IGNORECASE | re.DOTALL,
)
_BREAK_TAGS = re.compile(
    r"<\s*(?:br|/?p|/?div|/?tr|/?li|/?h[1-6]|/?table|/?blockquote|hr)\b[^<>]*>", re.IGNORECASE
)
_TAG = re.compile(r"<[^<>]*>")  # [^<>] keeps it linear on "<<<<..."


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: scripts, styles and comments dropped, block tags
    turned into line breaks, entities decoded. Not a renderer."""
    text = _DROP_BLOCKS.sub(" ", markup)
    text = _BREAK_TAGS.sub("\n", text)
    text = _TAG.sub("", text)
    return html.unescape(text)


def _is_inline_media(part: BodyPart) -> bool:
    return part.type_lower in ("image", "audio", "video")


def body_lists(body: BodyPart) -> tuple[list[BodyPart], list[BodyPart], list[BodyPart]]:
    """(textBody, htmlBody, attachments) following RFC 8621 §4.1.4 parseStructure."""
    text_body: list[BodyPart] = []
    html_body: list[BodyPart] = []
    attachments: list[BodyPart] = []
    _walk_lists([body], "mixed", False, html_body, text_body, attachments)
    return text_body, html_body, attachments


def _walk_lists(
    parts: list[BodyPart],
    multipart_type: str,
    in_alternative: bool,
    html_body: list[BodyPart] | None,
    text_body: list[BodyPart] | None,
    attachments: list[BodyPart],
) -> None:
    text_len = -1 if text_body is None else len(text_body)
    html_len = -1 if html_body is None else len(html_body)
    for i, part in enumerate(parts):
        mime = part.mime_type
        inline = (
            part.disposition_lower != "attachment"
            and (mime in ("text/plain", "text/html") or _is_inline_media(part))
            and (
                i == 0
                or (multipart_type != "related" and (_is_inline_media(part) or not part.filename))
            )
        )
        if part.children:
            sub = part.subtype_lower
            _walk_lists(
                part.children, sub, in_alternative or sub == "alternative",
                html_body, text_body, attachments,
            )  # fmt: skip
        elif inline:
            if multipart_type == "alternative":
                if mime == "text/plain" and text_body is not None:
                    text_body.append(part)
                elif mime == "text/html" and html_body is not None:
                    html_body.append(part)
                else:
                    attachments.append(part)
                continue
            if in_alternative:
                if mime == "text/plain":
                    html_body = None
                if mime == "text/html":
                    text_body = None
            if text_body is not None:
                text_body.append(part)
            if html_body is not None:
                html_body.append(part)
            if (text_body is None or html_body is None) and _is_inline_media(part):
                attachments.append(part)
        else:
            attachments.append(part)
    if multipart_type == "alternative" and text_body is not None and html_body is not None:
        # One side had no alternative of its own: share the other side's parts.
        if text_len == len(text_body) and html_len != len(html_body):
            text_body.extend(html_body[html_len:])
        if html_len == len(html_body) and text_len != len(text_body):
            html_body.extend(text_body[text_len:])


def has_attachment(attachments: list[BodyPart]) -> bool:
    """JMAP hasAttachment, approximately: an attachment that is not an inline image
    referenced by Content-ID (those belong to the HTML body)."""
    for part in attachments:
        if part.disposition_lower == "attachment" or part.id is None or not _is_inline_media(part):
            return True
    return False


_SPACES = re.compile(r"\s+")


def preview(data: bytes, text_body: list[BodyPart], html_body: list[BodyPart]) -> str:
    """RFC 8970 PREVIEW: the start of the first text/plain (else HTML) body part,
    whitespace collapsed, at most 256 characters."""
    for part in text_body:
        if part.mime_type == "text/plain":
            raw = part_text(data, part, 16384)
            # The start is enough when it gives more than PREVIEW_CHARS once collapsed (the
            # character after them is not trailing space): a regex pass over 16 KB is not.
            text = _SPACES.sub(" ", raw[: PREVIEW_CHARS * 4]).strip()
            if len(text) <= PREVIEW_CHARS and len(raw) > PREVIEW_CHARS * 4:
                text = _SPACES.sub(" ", raw).strip()
            if text:
                return text[:PREVIEW_CHARS]
    for part in html_body:
        if part.mime_type == "text/html":
            raw = part_text(data, part, 262144)
            text = _SPACES.sub(" ", html_to_text(raw)).strip()
            if text:
                return text[:PREVIEW_CHARS]
    return ""


def full_text(data: bytes, body: BodyPart, limit: int = TEXT_LIMIT) -> str:
    """The decoded text of every text/* leaf (HTML stripped), at most ``limit`` characters."""
    out: list[str] = []
    left = limit
    seen: set[int] = set()
    for _section, part in body.walk():
        if left <= 0:
            break
        if part.children or part.type_lower != "text" or id(part) in seen:
            continue
        seen.add(id(part))
        # Encoded octets read for ``left`` characters: a bound, not exact (QP of UTF-8
        # can need up to 12 octets a character; HTML shrinks when stripped).
        text = part_text(data, part, left * 6)
        if part.subtype_lower == "html":
            text = html_to_text(text)
        text = text[:left]
        out.append(text)
        left -= len(text) + 1
    return "\n".join(out)
