"""Reading a message: the page around it, the sandboxed frame with its body, its parts.

The body of an HTML message is never part of the webmail's own pages: it is served at its
own URL with its own Content-Security-Policy (no script at all, images only from us or
``data:``, and ``https:`` once the reader allowed remote images for that message; the CSP
``sandbox`` directive too) and shown in ``<iframe sandbox>`` without ``allow-scripts`` or
``allow-same-origin``. The frame and the inline images it shows are fetched from an opaque
origin, which gets no SameSite=Strict cookie, so their URLs carry a capability
(:meth:`SessionTable.sign`). Parts are served as stored after transfer decoding, with
``X-Content-Type-Options: nosniff``; anything but a plain raster image is a download.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from html import escape as html_escape
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from courriel.mime import body_from_json, body_lists, decode_part, envelope_from_json, part_text
from courriel.mime.structure import BodyPart, Envelope
from courriel.store.api import Flag, FlagMode, HeaderContains, MessageRecord, Or
from courriel.webmail.common import WebError, Webmail, error_response
from courriel.webmail.listing import Row, display_name, make_row, names
from courriel.webmail.sanitize import linkify_text, sanitize_html
from courriel.webmail.sessions import COOKIE, Session
from courriel.webmail.threads import neighbours

#: Image types shown inline; everything else (SVG included: it can carry script) downloads.
INLINE_IMAGES = frozenset({"image/png", "image/gif", "image/jpeg", "image/webp"})
FRAME_CSP = "default-src 'none'; img-src 'self' data:{remote}; style-src 'unsafe-inline'; font-src 'none'; " \
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
PART_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
MAX_CONVERSATION = 50
_SECTION = re.compile(r"\d{1,4}(?:\.\d{1,4}){0,15}\Z")


@dataclass
class Part:
    section: str
    filename: str
    mime_type: str
    size: int
    inline_image: bool


@dataclass
class Loaded:
    mailbox_id: int
    record: MessageRecord
    data: bytes
    body: BodyPart
    envelope: Envelope


async def load(wm: Webmail, mailbox_id: int, uid: int) -> Loaded:
    records = await wm.store.get_records(mailbox_id, [uid])
    if not records:
        raise WebError(404, "No such message (it may have been moved or deleted)")
    rec = records[0]
    try:
        data = await wm.store.read_message(rec.blob)
    except FileNotFoundError:
        raise WebError(404, "No such message (it may have been moved or deleted)") from None
    return Loaded(mailbox_id, rec, data, body_from_json(rec.body_json), envelope_from_json(rec.envelope_json))


def sections(body: BodyPart) -> dict[int, str]:
    return {id(part): ".".join(map(str, section)) or "1" for section, part in body.walk() if section}


def content_ids(body: BodyPart) -> dict[str, str]:
    out: dict[str, str] = {}
    for section, part in body.walk():
        if section and part.id and not part.children:
            out.setdefault(part.id.strip().strip("<>"), ".".join(map(str, section)))
    return out


def part_url(mailbox_id: int, uid: int, section: str, capability: str, download: bool = False) -> str:
    return f"/mail/box/{mailbox_id}/{uid}/part/{section}?k={quote(capability)}" + ("&download=1" if download else "")


def has_html(body: BodyPart) -> bool:
    _, html_body, _ = body_lists(body)
    return any(p.mime_type == "text/html" for p in html_body)


class SanitizedCache:
    """Sanitised HTML bodies, so that the message page (which counts the blocked images) and
    its frame, and a message viewed again, run the sanitiser once: by (user id, blob, part,
    remote images allowed). Blob names are unique and their files immutable, so an entry
    can never describe another message; the user id keeps each account's entries its own.
    The URLs of inline ``cid:`` images carry a per-session capability: they are stored as
    ``<marker><section><marker>``, the marker random per process (a message cannot forge
    it), and filled in for each request. Bounded in total characters, LRU."""

    def __init__(self, max_chars: int = 8 << 20) -> None:
        self.max_chars = max_chars
        self.size = 0
        self.marker = "cm" + secrets.token_hex(12)
        self._items: OrderedDict[tuple[int, str, str, bool], tuple[str, int]] = OrderedDict()
        self._fill = re.compile(re.escape(self.marker) + r"([0-9.]{1,80})" + re.escape(self.marker))

    def __len__(self) -> int:
        return len(self._items)

    def sanitized(self, user_id: int, msg: Loaded, part: BodyPart, section: str, allow_remote: bool) -> tuple[str, int]:
        """The part's sanitised HTML with marked cid URLs, and its blocked image count."""
        key = (user_id, msg.record.blob, section, allow_remote)
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            return found
        cids = content_ids(msg.body)
        marker = self.marker

        def cid_url(cid: str) -> str | None:
            target = cids.get(cid)
            return f"{marker}{target}{marker}" if target else None

        rendered = sanitize_html(part_text(msg.data, part), cid_url, allow_remote)
        found = (rendered.html, rendered.blocked_images)
        self._items[key] = found
        self.size += len(rendered.html)
        while self.size > self.max_chars and self._items:
            _, (gone, _) = self._items.popitem(last=False)
            self.size -= len(gone)
        return found

    def fill(self, html: str, url: Callable[[str], str]) -> str:
        """The marked cid URLs replaced by ``url(section)``."""
        if self.marker not in html:
            return html
        return self._fill.sub(lambda m: html_escape(url(m.group(1)), quote=True), html)


sanitized_cache = SanitizedCache()


def frame_document(wm: Webmail, msg: Loaded, capability: str, allow_remote: bool, user_id: int) -> tuple[str, int]:
    """The frame's HTML and how many remote images were blocked."""
    _, html_body, _ = body_lists(msg.body)
    numbers = sections(msg.body)
    uid = msg.record.info.uid

    def cid_url(section: str) -> str:
        return part_url(msg.mailbox_id, uid, section, capability)

    chunks: list[str] = []
    blocked = 0
    for part in html_body:
        if part.mime_type == "text/html":
            html, count = sanitized_cache.sanitized(user_id, msg, part, numbers.get(id(part), "1"), allow_remote)
            blocked += count
            chunks.append(sanitized_cache.fill(html, cid_url))
        elif part.type_lower == "text":
            chunks.append(f'<pre class="plain">{linkify_text(part_text(msg.data, part))}</pre>')
        elif part.mime_type in INLINE_IMAGES:
            src = part_url(msg.mailbox_id, uid, numbers[id(part)], capability)
            chunks.append(f'<p><img src="{src}" alt=""></p>')
    style = (
        "body{font:15px/1.45 system-ui,sans-serif;color:#1d2330;margin:12px;overflow-wrap:anywhere}"
        "img{max-width:100%;height:auto}pre.plain{white-space:pre-wrap;font:14px/1.4 ui-monospace,monospace}"
        "blockquote{margin:0 0 0 .8em;padding-left:.8em;border-left:3px solid #ccd}"
    )
    doc = (
        f'<!doctype html><html><head><meta charset="utf-8"><style>{style}</style></head>'
        f"<body>{''.join(chunks)}</body></html>"
    )
    return doc, blocked


def text_parts(msg: Loaded) -> list[str]:
    text_body, _, _ = body_lists(msg.body)
    return [part_text(msg.data, p) for p in text_body if p.type_lower == "text"]


def attachments(msg: Loaded, referenced: set[str] | None = None) -> list[Part]:
    _, _, atts = body_lists(msg.body)
    numbers = sections(msg.body)
    out = []
    for part in atts:
        if part.children:
            continue
        cid = part.id.strip().strip("<>") if part.id else None
        if referenced and cid in referenced and part.disposition_lower != "attachment":
            continue
        name = part.filename or ("message.eml" if part.mime_type == "message/rfc822" else f"part-{numbers[id(part)]}")
        out.append(Part(numbers[id(part)], name, part.mime_type, len(decode_part(msg.data, part)),
                        part.mime_type in INLINE_IMAGES))  # fmt: skip
    return out


def referenced_cids(msg: Loaded) -> set[str]:
    _, html_body, _ = body_lists(msg.body)
    found: set[str] = set()
    for part in html_body:
        if part.mime_type == "text/html":
            found |= {m.strip("<>") for m in re.findall(r"cid:([^\"'\s>]+)", part_text(msg.data, part), re.I)}
    return found


async def conversation(wm: Webmail, session: Session, msg: Loaded) -> list[tuple[int, Row]]:
    """The messages of the thread (same root Message-ID) in this folder, the Inbox and Sent."""
    rec = msg.record
    root = None
    for value in (rec.references, rec.in_reply_to, rec.message_id):
        if value and value.split():
            root = value.split()[0]
            break
    if root is None:
        return []
    key = Or((HeaderContains("message-id", root), HeaderContains("references", root),
              HeaderContains("in-reply-to", root)))  # fmt: skip
    sent = await wm.special(session, "\\Sent")
    inbox = await wm.store.get_mailbox(session.user_id, "INBOX")
    out: list[tuple[int, Row]] = []
    for mailbox_id in dict.fromkeys((msg.mailbox_id, inbox.id if inbox else sent.id, sent.id)):
        uids = (await wm.store.search(mailbox_id, key))[-MAX_CONVERSATION:]
        for r in await wm.store.get_records(mailbox_id, uids):
            out.append((mailbox_id, make_row(r)))
    if len(out) <= 1:
        return []
    out.sort(key=lambda item: item[1].date)
    return out


async def message_page(wm: Webmail, request: Request, session: Session) -> Response:
    mailbox = await wm.mailbox(session, int(request.path_params["mailbox_id"]))
    uid = int(request.path_params["uid"])
    msg = await load(wm, mailbox.id, uid)
    if not msg.record.info.flags & Flag.SEEN:
        await wm.store.store_flags(mailbox.id, [uid], FlagMode.ADD, Flag.SEEN)
    wm.retrievals.note(session, request, msg.record.info.content_id)
    capability = wm.sessions.sign(session, mailbox.id, uid)
    allow_remote = request.query_params.get("images") == "1"
    html = has_html(msg.body)
    blocked = frame_document(wm, msg, capability, allow_remote, session.user_id)[1] if html else 0
    env = msg.envelope
    sender, sender_address = display_name(env.from_)
    uids = session.listing.uids if session.listing and session.listing.key[0] == mailbox.id else None
    prev_uid = next_uid = None
    threads = wm.threads.peek(mailbox.id) if session.conversations else None
    if threads is not None:
        prev_uid, next_uid = neighbours(threads, uid)  # from conversation to conversation
    elif uids is not None and uid in uids:
        i = uids.index(uid)
        prev_uid = uids[i - 1] if i > 0 else None
        next_uid = uids[i + 1] if i + 1 < len(uids) else None
    frame = f"/mail/box/{mailbox.id}/{uid}/body?k={quote(capability)}" + ("&images=1" if allow_remote else "")
    return wm.render(
        "message.html", **await wm.chrome(session, mailbox.id), mailbox=mailbox, uid=uid, record=msg.record,
        subject=msg.record.subject or "(no subject)", sender=sender, sender_address=sender_address,
        to=names(env.to), cc=names(env.cc), date=msg.record.sent_date or msg.record.info.internal_date,
        html=html, frame=frame, blocked=blocked, allow_remote=allow_remote,
        texts=[linkify_text(t) for t in text_parts(msg)] if not html else [],
        attachments=attachments(msg, referenced_cids(msg) if html else None), capability=capability,
        flagged=bool(msg.record.info.flags & Flag.FLAGGED),
        conversation=await conversation(wm, session, msg), prev_uid=prev_uid, next_uid=next_uid,
        is_draft=bool(msg.record.info.flags & Flag.DRAFT),
    )  # fmt: skip


async def _authorised(wm: Webmail, request: Request, mailbox_id: int, uid: int) -> Session | None:
    """The session allowed to read this message: the capability's, else the cookie's; the
    mailbox must be its user's either way."""
    session = await wm.sessions.verify(mailbox_id, uid, request.query_params.get("k"))
    if session is None:
        session = await wm.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return None
    mailbox = await wm.store.get_mailbox_by_id(mailbox_id)
    return session if mailbox is not None and mailbox.user_id == session.user_id else None


async def frame(wm: Webmail, request: Request) -> Response:
    """The sanitised HTML body, for the sandboxed frame (capability or session)."""
    mailbox_id, uid = int(request.path_params["mailbox_id"]), int(request.path_params["uid"])
    session = await _authorised(wm, request, mailbox_id, uid)
    if session is None:
        return error_response(request, WebError(403, "Not allowed"))
    try:
        msg = await load(wm, mailbox_id, uid)
    except WebError as exc:
        return error_response(request, exc)
    allow_remote = request.query_params.get("images") == "1"
    capability = wm.sessions.sign(session, mailbox_id, uid)
    doc, _ = frame_document(wm, msg, capability, allow_remote, session.user_id)
    csp = FRAME_CSP.format(remote=" https:" if allow_remote else "")
    return HTMLResponse(doc, headers={
        "Content-Security-Policy": csp, "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "private, no-store",
    })  # fmt: skip


async def part(wm: Webmail, request: Request) -> Response:
    """One body part after transfer decoding: an inline raster image, else a download."""
    mailbox_id, uid = int(request.path_params["mailbox_id"]), int(request.path_params["uid"])
    section = request.path_params["section"]
    if not _SECTION.match(section):
        return error_response(request, WebError(404, "Not found"))
    session = await _authorised(wm, request, mailbox_id, uid)
    if session is None:
        return error_response(request, WebError(403, "Not allowed"))
    try:
        msg = await load(wm, mailbox_id, uid)
    except WebError as exc:
        return error_response(request, exc)
    found = msg.body.part_at(tuple(int(n) for n in section.split(".")))
    if found is None or found.children:
        return error_response(request, WebError(404, "No such part"))
    data = decode_part(msg.data, found)
    mime = found.mime_type
    download = request.query_params.get("download") == "1" or mime not in INLINE_IMAGES
    name = found.filename or f"part-{section}"
    if download:
        wm.retrievals.note(session, request, msg.record.info.content_id, section)
    headers = {"Content-Security-Policy": PART_CSP, "Cache-Control": "private, max-age=3600"}
    if download:
        headers["Content-Disposition"] = content_disposition(name)
        if mime == "text/html" or mime.startswith(("image/svg", "application/xhtml")):
            mime = "application/octet-stream"
    return Response(data, media_type=mime if "/" in mime else "application/octet-stream", headers=headers)


async def raw(wm: Webmail, request: Request, session: Session) -> Response:
    """The whole message as stored, byte for byte, as a download (``message/rfc822``)."""
    mailbox = await wm.mailbox(session, int(request.path_params["mailbox_id"]))
    msg = await load(wm, mailbox.id, int(request.path_params["uid"]))
    wm.retrievals.note(session, request, msg.record.info.content_id, "raw")
    stem = re.sub(r"[^\w .,()-]+", "_", msg.record.subject or "")[:80].strip() or f"message-{msg.record.info.uid}"
    return Response(msg.data, media_type="message/rfc822", headers={
        "Content-Disposition": content_disposition(stem + ".eml"), "Content-Security-Policy": PART_CSP,
        "Cache-Control": "private, no-store",
    })  # fmt: skip


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the RFC 6266 / RFC 8187 UTF-8 one."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename) or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
