"""Writing mail: compose, reply, reply all, forward, attachments, drafts, sending.

Attachments are uploaded one request per file (the script shows progress with
XMLHttpRequest) into the session, or sent with the form itself when scripts are off. The
message is built by :func:`courriel.mime.compose_message`; sending goes through
:func:`courriel.delivery.submit.submit` (the sender rules, local delivery and queue of an
authenticated SMTP submission) and a copy with the Bcc field, the same Message-ID and Date,
is appended to the \\Sent mailbox with \\Seen. Drafts are saved into \\Drafts with \\Draft
(the script saves every few seconds while the text changes), each save replacing the
previous copy; sending removes the draft.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from courriel.delivery.submit import SubmitError, submit
from courriel.mime import (
    Attachment,
    base_subject,
    compose_message,
    decode_part,
    html_to_text,
    parse_addresses,
)
from courriel.mime.content import body_lists, part_text
from courriel.mime.headers import decode_header_value, scan_header
from courriel.store.api import Flag, FlagMode
from courriel.web.auth import client_ip
from courriel.webmail.common import WebError, Webmail, number, wants_json
from courriel.webmail.listing import names
from courriel.webmail.reader import Loaded, load
from courriel.webmail.sanitize import quote_text
from courriel.webmail.sessions import Session, Upload

log = logging.getLogger("courriel.webmail")
MAX_FIELD = 100_000  # characters of an address or subject field
MAX_BODY = 5_000_000
MAX_RECIPIENTS = 100
MODES = ("new", "reply", "all", "forward", "draft")


@dataclass
class Draft:
    """The fields of the compose form."""

    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: str = ""
    reply_mailbox: int = 0
    reply_uid: int = 0
    draft_uid: int = 0
    attachments: list[Upload] = field(default_factory=list)


def _text_of(msg: Loaded) -> str:
    text_body, html_body, _ = body_lists(msg.body)
    texts = [part_text(msg.data, p) for p in text_body if p.mime_type == "text/plain"]
    if not texts:
        texts = [html_to_text(part_text(msg.data, p)) for p in html_body if p.mime_type == "text/html"]
    return "\n".join(texts)


def _addresses(value: str) -> list[tuple[str, str]]:
    return parse_addresses(value) if value.strip() else []


def _without(items: list[tuple[str, str]], *skip: str) -> list[tuple[str, str]]:
    seen = {s.lower() for s in skip}
    out = []
    for name, addr in items:
        if addr.lower() not in seen:
            seen.add(addr.lower())
            out.append((name, addr))
    return out


def _format(items: list[tuple[str, str]]) -> str:
    return ", ".join(f'"{n}" <{a}>' if n and any(c in n for c in ',;<>@"') else f"{n} <{a}>" if n else a
                     for n, a in items)  # fmt: skip


def _header(msg: Loaded, name: str) -> str:
    end = msg.data.find(b"\r\n\r\n")
    fields, _ = scan_header(msg.data, 0, end + 2 if end >= 0 else len(msg.data))
    for key, raw in fields:
        if key.lower() == name:
            return decode_header_value(raw)
    return ""


def _attachments_of(session: Session, msg: Loaded, limit: int) -> list[Upload]:
    """The attachments of a message being forwarded or a draft, as uploads of the session."""
    _, _, atts = body_lists(msg.body)
    out = []
    for part in atts:
        if part.children:
            continue
        data = decode_part(msg.data, part)
        if session.upload_bytes() + len(data) > limit:
            break
        upload = Upload(secrets.token_urlsafe(9), part.filename or "attachment", part.mime_type, data)
        session.uploads[upload.id] = upload
        out.append(upload)
    return out


async def prefill(wm: Webmail, session: Session, mode: str, mailbox_id: int, uid: int) -> Draft:
    """The form's first content for a reply, reply all, forward, or a saved draft."""
    if mode == "new":
        return Draft()
    mailbox = await wm.mailbox(session, mailbox_id)
    msg = await load(wm, mailbox.id, uid)
    rec = msg.record
    limit = wm.ctx.cfg.limits.max_message_size
    subject = rec.subject or ""
    if mode == "draft":
        return Draft(_header(msg, "to"), _header(msg, "cc"), _header(msg, "bcc"), subject, _text_of(msg),
                     (rec.in_reply_to or "").strip(), rec.references or "", 0, 0,
                     uid if mailbox.special_use == "\\Drafts" else 0, _attachments_of(session, msg, limit))  # fmt: skip
    env = msg.envelope
    sender = names(env.from_)
    when = format_datetime(rec.sent_date or rec.info.internal_date)
    if mode == "forward":
        intro = (f"\n\n---------- Forwarded message ----------\nFrom: {sender}\nDate: {when}\n"
                 f"Subject: {subject}\nTo: {names(env.to)}\n\n")  # fmt: skip
        return Draft(subject=f"Fwd: {base_subject(subject) or subject}", body=intro + _text_of(msg),
                     attachments=_attachments_of(session, msg, limit))  # fmt: skip
    reply_to = _addresses(_header(msg, "reply-to")) or _addresses(_header(msg, "from"))
    to = _without(reply_to, session.address)
    cc: list[tuple[str, str]] = []
    if mode == "all":
        others = _addresses(_header(msg, "to")) + _addresses(_header(msg, "cc"))
        cc = _without(others, session.address, *(a for _, a in to))
    if not to:  # replying to one's own message: to its recipients
        to = _without(_addresses(_header(msg, "to")), session.address)
    refs = (rec.references or "").split() or ([rec.in_reply_to.split()[0]] if rec.in_reply_to else [])
    if rec.message_id:
        refs.append(rec.message_id)
    body = f"\n\nOn {when}, {sender} wrote:\n{quote_text(_text_of(msg))}\n"
    return Draft(_format(to), _format(cc), "", f"Re: {base_subject(subject) or subject}", body,
                 rec.message_id or "", " ".join(refs[-20:]), mailbox.id, uid)  # fmt: skip


async def compose_page(wm: Webmail, request: Request, session: Session) -> Response:
    q = request.query_params
    mode = q.get("mode", "new")
    if mode not in MODES:
        raise WebError(400, "Unknown compose mode")
    mailbox_id = number(q.get("mbox")) or 0
    uid = number(q.get("uid")) or 0
    if mode != "new" and not (mailbox_id and uid):
        raise WebError(400, "Which message?")
    draft = await prefill(wm, session, mode, mailbox_id, uid)
    return await _form(wm, session, draft, notice=q.get("notice", "")[:200])


async def _form(
    wm: Webmail, session: Session, draft: Draft, error: str = "", notice: str = "", status: int = 200
) -> Response:
    chrome = await wm.chrome(session)
    return wm.render("compose.html", status=status, draft=draft, error=error, notice=notice, **chrome)


def _draft_from(session: Session, form: FormData) -> Draft:
    def text(name: str, limit: int = MAX_FIELD) -> str:
        value = form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    def ident(name: str) -> int:
        return number(form.get(name)) or 0

    uploads = []
    for upload_id in form.getlist("attachment"):
        if isinstance(upload_id, str) and upload_id in session.uploads:
            uploads.append(session.uploads[upload_id])
    return Draft(text("to"), text("cc"), text("bcc"), text("subject"), text("body", MAX_BODY),
                 text("in_reply_to"), text("references"), ident("reply_mailbox"), ident("reply_uid"),
                 ident("draft_uid"), uploads)  # fmt: skip


async def _direct_files(session: Session, form: FormData, draft: Draft, limit: int) -> None:
    """Files sent with the form itself (no script): kept like uploads."""
    for item in form.getlist("files"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read()
            if session.upload_bytes() + len(data) > limit:
                raise WebError(413, "Attachments larger than a message may be")
            upload = Upload(secrets.token_urlsafe(9), item.filename, item.content_type or "application/octet-stream", data)
            session.uploads[upload.id] = upload
            draft.attachments.append(upload)


def build(session: Session, draft: Draft, *, keep_bcc: bool, message_id: str, date: datetime) -> bytes:
    try:
        return compose_message(
            from_=session.address, to=_addresses(draft.to) or None, cc=_addresses(draft.cc) or None,
            bcc=_addresses(draft.bcc) or None, subject=draft.subject, text=draft.body,
            attachments=[Attachment(u.filename, u.data, u.content_type) for u in draft.attachments],
            in_reply_to=draft.in_reply_to or None, references=draft.references.split(),
            message_id=message_id, date=date, keep_bcc=keep_bcc, allow_8bit=False,
        )  # fmt: skip
    except ValueError as exc:
        raise WebError(400, f"Cannot write this message: {exc}") from None


def recipients(draft: Draft) -> list[str]:
    out: list[str] = []
    for value in (draft.to, draft.cc, draft.bcc):
        for _, addr in _addresses(value):
            local, at, domain = addr.rpartition("@")
            if not at or not local or not domain or any(c.isspace() for c in addr):
                raise WebError(400, f"Not an address: {addr}")
            if addr.lower() not in (a.lower() for a in out):
                out.append(addr)
    if len(out) > MAX_RECIPIENTS:
        raise WebError(400, f"At most {MAX_RECIPIENTS} recipients")
    return out


def _message_id(session: Session) -> str:
    domain = session.address.rpartition("@")[2] or "localhost"
    return f"{secrets.token_hex(12)}@{domain}"


async def save_draft(wm: Webmail, request: Request, session: Session) -> Response:
    form = await request.form()
    draft = _draft_from(session, form)
    await _direct_files(session, form, draft, wm.ctx.cfg.limits.max_message_size)
    drafts = await wm.special(session, "\\Drafts")
    data = build(session, draft, keep_bcc=True, message_id=_message_id(session), date=datetime.now().astimezone())
    appended = await wm.store.append(drafts.id, data, Flag.DRAFT | Flag.SEEN)
    await _drop_draft(wm, drafts.id, draft.draft_uid)
    if wants_json(request):
        return JSONResponse({"draft_uid": appended.uid, "saved": datetime.now().strftime("%H:%M:%S")})
    return RedirectResponse(f"/mail/compose?mode=draft&mbox={drafts.id}&uid={appended.uid}&notice=Draft+saved",
                            status_code=303)  # fmt: skip


async def _drop_draft(wm: Webmail, drafts_id: int, uid: int) -> None:
    if not uid:
        return
    existing = await wm.store.list_messages(drafts_id, [uid])
    if existing and existing[0].flags & Flag.DRAFT:
        await wm.store.delete_messages(drafts_id, [uid])


async def send(wm: Webmail, request: Request, session: Session) -> Response:
    form = await request.form()
    draft = _draft_from(session, form)
    await _direct_files(session, form, draft, wm.ctx.cfg.limits.max_message_size)
    if form.get("action") == "save":
        return await _save_instead(wm, session, draft)
    try:
        rcpts = recipients(draft)
        if not rcpts:
            raise WebError(400, "Add at least one recipient")
        message_id, date = _message_id(session), datetime.now().astimezone()
        sent = build(session, draft, keep_bcc=False, message_id=message_id, date=date)
        if len(sent) > wm.ctx.cfg.limits.max_message_size:
            raise WebError(413, "The message is larger than this server accepts")
        result = await submit(wm.store, session.address, session.address, rcpts, sent,
                              hostname=wm.ctx.cfg.server.hostname, peer_ip=client_ip(request))  # fmt: skip
    except WebError as exc:
        return await _form(wm, session, draft, error=exc.message, status=exc.status)
    except SubmitError as exc:
        log.info("webmail: %s: submission refused: %s", session.address, exc)
        who = f" ({exc.recipient})" if exc.recipient else ""
        return await _form(wm, session, draft, error=f"Not sent: {exc.text}{who}", status=400)
    log.info("webmail: %s sent %s to %d recipient(s)", session.address, result.id, len(rcpts))
    copy = build(session, draft, keep_bcc=True, message_id=message_id, date=date)
    sent_box = await wm.special(session, "\\Sent")
    await wm.store.append(sent_box.id, copy, Flag.SEEN)
    drafts = await wm.special(session, "\\Drafts")
    await _drop_draft(wm, drafts.id, draft.draft_uid)
    if draft.reply_mailbox and draft.reply_uid:
        try:
            original = await wm.mailbox(session, draft.reply_mailbox)
            await wm.store.store_flags(original.id, [draft.reply_uid], FlagMode.ADD, Flag.ANSWERED)
        except WebError:
            pass
    for upload in draft.attachments:
        session.uploads.pop(upload.id, None)
    back = draft.reply_mailbox or (await wm.store.get_mailbox(session.user_id, "INBOX") or sent_box).id
    return RedirectResponse(f"/mail/box/{back}?notice=Message+sent", status_code=303)


async def _save_instead(wm: Webmail, session: Session, draft: Draft) -> Response:
    drafts = await wm.special(session, "\\Drafts")
    data = build(session, draft, keep_bcc=True, message_id=_message_id(session), date=datetime.now().astimezone())
    appended = await wm.store.append(drafts.id, data, Flag.DRAFT | Flag.SEEN)
    await _drop_draft(wm, drafts.id, draft.draft_uid)
    return RedirectResponse(f"/mail/compose?mode=draft&mbox={drafts.id}&uid={appended.uid}&notice=Draft+saved",
                            status_code=303)  # fmt: skip


async def upload(wm: Webmail, request: Request, session: Session) -> Response:
    """Files of a message being written (one request per file from the script)."""
    form = await request.form(max_files=20)
    limit = wm.ctx.cfg.limits.max_message_size
    out = []
    for item in form.getlist("file"):
        if not isinstance(item, UploadFile):
            continue
        data = await item.read()
        if session.upload_bytes() + len(data) > limit:
            raise WebError(413, "Attachments larger than a message may be")
        up = Upload(secrets.token_urlsafe(9), item.filename or "attachment",
                    item.content_type or "application/octet-stream", data)  # fmt: skip
        session.uploads[up.id] = up
        out.append({"id": up.id, "name": up.filename, "size": len(data)})
    if not out:
        raise WebError(400, "No file")
    return JSONResponse(out)


async def drop_upload(wm: Webmail, request: Request, session: Session) -> Response:
    form = await request.form()
    session.uploads.pop(str(form.get("id") or ""), None)
    return JSONResponse({"ok": True})
