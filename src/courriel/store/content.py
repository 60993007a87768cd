"""What the store computes once per message at delivery, from the MIME parse.

IMAP FETCH (ENVELOPE, BODYSTRUCTURE), SEARCH, SORT and JMAP read these columns instead of
parsing the message again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from courriel.mime import parse_message
from courriel.mime.structure import body_to_json, envelope_to_json


@dataclass(frozen=True, slots=True)
class ContentSummary:
    size: int
    sent_date: int | None
    envelope: str
    body: str
    subject: str
    base_subject: str
    from_cf: str
    to_cf: str
    cc_cf: str
    bcc_cf: str
    subject_cf: str
    sort_from: str
    sort_to: str
    sort_cc: str
    display_from: str
    display_to: str
    message_id: str | None
    in_reply_to: str | None
    refs_header: str | None
    headers: str
    preview: str
    has_attachment: bool
    #: For the full-text index: decoded header fields ("Name: value" lines) and body text.
    head_text: str = ""
    body_text: str = ""


def _search_text(addrs: list[tuple[str, str]]) -> str:
    return " ".join(f"{name} <{addr}>" if name else addr for name, addr in addrs).casefold()


def _sort_mailbox(addrs: list[tuple[str, str]]) -> str:
    # RFC 5256 §3: the addr-mailbox (local part) of the first address.
    if not addrs:
        return ""
    return addrs[0][1].rpartition("@")[0].casefold() if "@" in addrs[0][1] else addrs[0][1].casefold()


def _display(addrs: list[tuple[str, str]]) -> str:
    # RFC 5957: the display name of the first address, or its addr-spec when there is none.
    if not addrs:
        return ""
    name, addr = addrs[0]
    return (name or addr).casefold()


def summarize(data: bytes, max_depth: int = 100) -> ContentSummary:
    p = parse_message(data, max_depth=max_depth)
    sent = int(p.date.timestamp()) if p.date is not None else None
    return ContentSummary(
        size=len(data),
        sent_date=sent,
        envelope=envelope_to_json(p.envelope),
        body=body_to_json(p.body),
        subject=p.subject or "",
        base_subject=p.base_subject.casefold(),
        from_cf=_search_text(p.from_),
        to_cf=_search_text(p.to),
        cc_cf=_search_text(p.cc),
        bcc_cf=_search_text(p.bcc),
        subject_cf=(p.subject or "").casefold(),
        sort_from=_sort_mailbox(p.from_),
        sort_to=_sort_mailbox(p.to),
        sort_cc=_sort_mailbox(p.cc),
        display_from=_display(p.from_),
        display_to=_display(p.to),
        message_id=p.message_id,
        in_reply_to=" ".join(p.in_reply_to) or None,
        refs_header=" ".join(p.references) if p.references else None,
        headers=json.dumps(p.headers, ensure_ascii=True, separators=(",", ":")),
        preview=p.preview,
        has_attachment=p.has_attachment,
        head_text=_head_text(p.headers),
        body_text=p.text,
    )


def _head_text(headers: list[tuple[str, str]]) -> str:
    from courriel.mime import decode_header_value

    return "\n".join(f"{name}: {decode_header_value(value)}" for name, value in headers)


def index_texts(data: bytes) -> tuple[str, str]:
    """(head, body) text for the full-text index, as :func:`summarize` computes them."""
    p = parse_message(data)
    return _head_text(p.headers), p.text


def searchable_text(data: bytes, whole: bool) -> str:
    """The decoded text SEARCH BODY (``whole`` false) or TEXT (true) looks in."""
    p = parse_message(data)
    if not whole:
        return p.text
    return _head_text(p.headers) + "\n" + p.text


def thread_key(references: str | None, in_reply_to: str | None, message_id: str | None) -> str | None:
    """The thread a message belongs to, from its thread's root Message-ID (the first entry of
    References, else In-Reply-To, else its own Message-ID), hashed to a short object id
    (RFC 8474 §5.2: every message of a thread that references its root gets the same id).
    None when the message has none of these fields: it is a thread of its own, see
    :func:`thread_id`. Stored at delivery (``contents.thread_id``, schema 7) so that SEARCH
    THREADID is an index lookup."""
    for field in (references, in_reply_to, message_id):
        if field:
            parts = field.split()
            if parts:
                return "T" + hashlib.sha256(parts[0].encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return None


def thread_id(key: str | None, content_id: int) -> str:
    """The THREADID of a message: its :func:`thread_key`, or ``TC<content id>`` when it has none."""
    return key if key is not None else f"TC{content_id}"
