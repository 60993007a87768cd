"""Parse a raw message once, at delivery: envelope, body structure with offsets, and the
decoded fields SEARCH, SORT, THREAD and JMAP need.

The MIME tree is found by scanning the raw octets for boundary lines ourselves
(RFC 2046 §5.1.1), so every offset is exact; the stdlib ``email`` package supplies date
parsing. ``parse_message`` never raises: problems are recorded in ``defects``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .address import parse_address_list, parse_addresses
from .content import body_lists, decode_part, full_text, has_attachment, part_text, preview
from .headers import (
    decode_header_value,
    first_values,
    parse_date,
    parse_msg_ids,
    scan_header,
    unfold,
)
from .params import first_token, parse_content_type, parse_disposition
from .structure import EMPTY_ENVELOPE, Address, BodyPart, Envelope
from .subject import base_subject

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_PARTS",
    "ParsedMessage",
    "decode_header_value",
    "decode_part",
    "make_envelope",
    "parse_addresses",
    "parse_date",
    "parse_message",
    "part_text",
]

DEFAULT_MAX_DEPTH = 100  # MIME nesting beyond this is an opaque leaf
DEFAULT_MAX_PARTS = 10_000  # parts beyond this stay inside the last part read

_LF = 0x0A
_CR = 0x0D
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})


@dataclass(slots=True)
class ParsedMessage:
    """Everything delivery stores about a message. Names are decoded to Unicode except in
    ``envelope``, ``body`` and ``headers``, which keep raw values for IMAP."""

    envelope: Envelope
    body: BodyPart
    size: int
    defects: list[str] = field(default_factory=list)
    subject: str | None = None
    base_subject: str = ""
    from_: list[tuple[str, str]] = field(default_factory=list)
    sender: list[tuple[str, str]] = field(default_factory=list)
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    bcc: list[tuple[str, str]] = field(default_factory=list)
    date: datetime | None = None
    message_id: str | None = None  # without angle brackets
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)  # (name, raw value)
    preview: str = ""
    text: str = ""
    has_attachment: bool = False


@dataclass(slots=True)
class _Ctx:
    data: bytes
    max_depth: int
    parts_left: int
    defects: list[str]


def count_lines(data: bytes, start: int, end: int) -> int:
    """Lines in data[start:end]: line feeds, plus a last line without one."""
    n = data.count(b"\n", start, end)
    if end > start and data[end - 1] != _LF:
        n += 1
    return n


def _addresses(h: dict[str, str], name: str) -> list[Address] | None:
    raw = h.get(name)
    if raw is None:
        return None
    return parse_address_list(raw) or None


def make_envelope(fields: list[tuple[str, str]]) -> Envelope:
    """IMAP ENVELOPE (RFC 9051 §7.5.2) from a header's (name, raw value) fields."""
    h = first_values(fields)

    def raw(name: str) -> str | None:
        v = h.get(name)
        return None if v is None else unfold(v)

    from_ = _addresses(h, "from")
    return Envelope(
        raw("date"),
        raw("subject"),
        from_,
        _addresses(h, "sender") or from_,  # RFC 3501 §7.4.2: absent or empty -> From
        _addresses(h, "reply-to") or from_,
        _addresses(h, "to"),
        _addresses(h, "cc"),
        _addresses(h, "bcc"),
        raw("in-reply-to"),
        raw("message-id"),
    )


def _split_multipart(
    ctx: _Ctx, start: int, end: int, boundary: bytes, max_parts: int
) -> tuple[list[tuple[int, int]], bool]:
    """The (start, end) ranges of the body parts between delimiter lines.

    RFC 2046 §5.1.1: a delimiter is "--" boundary at the start of a line, optionally
    "--" (close), then transport padding (spaces, tabs) and the line end. The line break
    before a delimiter belongs to the delimiter, not to the part. Returns the ranges and
    whether the close delimiter was found.
    """
    data = ctx.data
    delim = b"--" + boundary
    ranges: list[tuple[int, int]] = []
    part_start = -1  # -1 while in the preamble
    pos = start
    while True:
        i = data.find(delim, pos, end)
        if i < 0:
            break
        pos = i + 1
        if i > start and data[i - 1] != _LF:
            continue
        j = i + len(delim)
        close = data.startswith(b"--", j, end)
        if close:
            j += 2
        while j < end and data[j] in b" \t":
            j += 1
        if j < end and data[j] == _CR:
            j += 1
        if j < end:
            if data[j] != _LF:
                continue  # a longer line, not a delimiter
            j += 1
        part_end = i
        if i > start and data[i - 1] == _LF:
            part_end -= 1
            if part_end > start and data[part_end - 1] == _CR:
                part_end -= 1
        if part_start >= 0:
            ranges.append((part_start, max(part_start, part_end)))
            if len(ranges) >= max_parts and not close:
                ctx.defects.append(f"more than {max_parts} parts: the rest is kept in the last")
                ranges[-1] = (ranges[-1][0], end)
                return ranges, False
        if close:
            return ranges, True
        part_start = j
        pos = j
    if part_start >= 0:
        ranges.append((part_start, end))
    return ranges, False


def _opaque(part: BodyPart, ctx: _Ctx, why: str) -> None:
    ctx.defects.append(f"{part.type}/{part.subtype} at offset {part.header_start}: {why}")
    part.type, part.subtype = "application", "octet-stream"


def _parse_part(
    ctx: _Ctx, start: int, end: int, depth: int, digest: bool
) -> tuple[BodyPart, list[tuple[str, str]]]:
    """Parse the entity at data[start:end] (header, then body) recursively."""
    data = ctx.data
    ctx.parts_left -= 1
    fields, body_start = scan_header(data, start, end, ctx.defects)
    h = first_values(fields)
    ct = parse_content_type(h.get("content-type"), ctx.defects)
    if ct is not None:
        ctype, subtype, params, imap_params = ct
    elif digest:  # RFC 2046 §5.1.5: the default in a multipart/digest is message/rfc822
        ctype, subtype, params, imap_params = "message", "rfc822", [], []
    else:  # RFC 2045 §5.2
        ctype, subtype = "text", "plain"
        params = imap_params = [("charset", "us-ascii")]
    disp = parse_disposition(h.get("content-disposition"), ctx.defects)
    lang_raw = h.get("content-language")
    language = None
    if lang_raw is not None:
        language = [t.strip() for t in unfold(lang_raw).split(",") if t.strip()] or None
    part = BodyPart(
        type=ctype,
        subtype=subtype,
        params=params,
        imap_params=imap_params,
        id=_nstring(h, "content-id"),
        description=_nstring(h, "content-description"),
        encoding=first_token(h.get("content-transfer-encoding")) or "7bit",
        size=end - body_start,
        md5=_nstring(h, "content-md5"),
        disposition=None if disp is None else disp[0],
        disposition_params=[] if disp is None else disp[1],
        disposition_imap_params=[] if disp is None else disp[2],
        language=language,
        location=_nstring(h, "content-location"),
        header_start=start,
        body_start=body_start,
        end=end,
    )
    kind = ctype.lower()
    sub = subtype.lower()
    if kind == "multipart":
        if depth >= ctx.max_depth:
            _opaque(part, ctx, f"nested deeper than {ctx.max_depth}")
        else:
            _children(ctx, part, depth, sub == "digest")
    elif kind == "message" and sub in ("rfc822", "global"):
        part.lines = count_lines(data, body_start, end)
        if depth >= ctx.max_depth:
            _opaque(part, ctx, f"nested deeper than {ctx.max_depth}")
        elif part.encoding_lower in _IDENTITY_ENCODINGS:
            nested, nested_fields = _parse_part(ctx, body_start, end, depth + 1, False)
            part.message = nested
            part.envelope = make_envelope(nested_fields)
        else:  # RFC 2046 §5.2.1 forbids this encoding; the content stays opaque
            ctx.defects.append(f"{ctype}/{subtype} with {part.encoding} encoding at {start}")
    elif kind == "text":
        part.lines = count_lines(data, body_start, end)
    return part, fields


def _nstring(h: dict[str, str], name: str) -> str | None:
    v = h.get(name)
    return None if v is None else unfold(v)


def _boundary(part: BodyPart) -> bytes | None:
    for name, value in part.imap_params:
        if name.lower() == "boundary" and value:
            return value.encode("utf-8", "surrogateescape")
    decoded = part.param("boundary")
    return decoded.encode("utf-8", "surrogateescape") if decoded else None


def _children(ctx: _Ctx, part: BodyPart, depth: int, digest: bool) -> None:
    boundary = _boundary(part)
    ranges: list[tuple[int, int]] = []
    if boundary is None:
        ctx.defects.append(f"multipart without boundary at offset {part.header_start}")
    else:
        ranges, closed = _split_multipart(
            ctx, part.body_start, part.end, boundary, max(1, ctx.parts_left)
        )
        if not ranges:
            ctx.defects.append(f"multipart without any part at offset {part.header_start}")
        elif not closed:
            ctx.defects.append(f"multipart without close delimiter at offset {part.header_start}")
    if not ranges:
        # A multipart needs a child for BODYSTRUCTURE: the whole body as a headerless
        # text/plain part keeps the content reachable.
        ascii_params = [("charset", "us-ascii")]
        part.children = [
            BodyPart(
                "text",
                "plain",
                ascii_params,
                ascii_params,
                size=part.end - part.body_start,
                lines=count_lines(ctx.data, part.body_start, part.end),
                header_start=part.body_start,
                body_start=part.body_start,
                end=part.end,
            )
        ]
        return
    part.children = [_parse_part(ctx, s, e, depth + 1, digest)[0] for s, e in ranges]


def parse_message(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_parts: int = DEFAULT_MAX_PARTS,
) -> ParsedMessage:
    """Parse a raw message (RFC 5322 + MIME); never raises. Offsets index ``data``."""
    data = bytes(data)  # no copy when already bytes
    defects: list[str] = []
    ctx = _Ctx(data, max_depth, max_parts, defects)
    try:
        body, fields = _parse_part(ctx, 0, len(data), 0, False)
    except Exception as exc:  # last line of defence: a bug must not lose a message
        defects.append(f"parser error: {exc!r}")
        return _fallback(data, defects)
    msg = ParsedMessage(make_envelope(fields), body, len(data), defects, headers=fields)
    try:
        _fill_decoded(msg, data, fields)
    except Exception as exc:
        defects.append(f"decoding error: {exc!r}")
    return msg


def _fill_decoded(msg: ParsedMessage, data: bytes, fields: list[tuple[str, str]]) -> None:
    h = first_values(fields)
    raw_subject = h.get("subject")
    if raw_subject is not None:
        msg.subject = decode_header_value(raw_subject)
        msg.base_subject = base_subject(msg.subject)
    msg.from_ = parse_addresses(h.get("from"))
    msg.sender = parse_addresses(h.get("sender"))
    msg.reply_to = parse_addresses(h.get("reply-to"))
    msg.to = parse_addresses(h.get("to"))
    msg.cc = parse_addresses(h.get("cc"))
    msg.bcc = parse_addresses(h.get("bcc"))
    msg.date = parse_date(h.get("date"))
    ids = parse_msg_ids(h.get("message-id"))
    msg.message_id = ids[0] if ids else None
    msg.in_reply_to = parse_msg_ids(h.get("in-reply-to"))
    msg.references = parse_msg_ids(h.get("references"))
    text_body, html_body, attachments = body_lists(msg.body)
    msg.preview = preview(data, text_body, html_body)
    msg.text = full_text(data, msg.body)
    msg.has_attachment = has_attachment(attachments)


def _fallback(data: bytes, defects: list[str]) -> ParsedMessage:
    body = BodyPart(
        "application", "octet-stream", [], [], size=len(data), end=len(data),
        header_start=0, body_start=0,
    )  # fmt: skip
    return ParsedMessage(EMPTY_ENVELOPE, body, len(data), defects)
