"""The folder tree and the message list: pages of 50 read through the store's sort and search.

A mailbox view (folder, search text, field) is one ``Store.sort`` call giving the UIDs in
display order (newest first by the Date field, RFC 5256 ``DATE`` reversed); the session keeps
that UID array while the mailbox's HIGHESTMODSEQ is unchanged, so paging through 100,000
messages reads only the 50 records shown (``Store.get_records``), never every row.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from courriel.mime import decode_header_value, envelope_from_json
from courriel.mime.structure import Address
from courriel.store.api import (
    All,
    BodyContains,
    Flag,
    HeaderContains,
    Mailbox,
    MessageRecord,
    Or,
    SearchKey,
    SortKey,
)
from courriel.webmail.common import PAGE_SIZE, WebError, Webmail, int_param, number
from courriel.webmail.sessions import Listing, Session

if TYPE_CHECKING:
    from courriel.webmail.threads import ThreadRow

MAX_QUERY = 200
#: What the search box looks in.
FIELDS = ("all", "subject", "from", "to", "body")


@dataclass(frozen=True, slots=True)
class Row:
    uid: int
    sender: str
    sender_address: str
    recipients: str
    subject: str
    date: datetime
    seen: bool
    flagged: bool
    answered: bool
    draft: bool
    attachment: bool
    preview: str
    in_thread: bool


@dataclass(frozen=True, slots=True)
class Folder:
    mailbox: Mailbox
    label: str
    depth: int
    current: bool


def search_key(query: str, field: str) -> SearchKey:
    """The store search for the search box: words must all be there (as one substring)."""
    text = query.strip()
    if not text:
        return All()
    if field == "subject":
        return HeaderContains("subject", text)
    if field == "from":
        return HeaderContains("from", text)
    if field == "to":
        return Or((HeaderContains("to", text), HeaderContains("cc", text)))
    if field == "body":
        return BodyContains(text)
    return Or((HeaderContains("subject", text), HeaderContains("from", text), HeaderContains("to", text),
               BodyContains(text)))  # fmt: skip


def display_name(addresses: list[Address] | None) -> tuple[str, str]:
    """(what to show, the address) of the first address of a list."""
    if not addresses:
        return "", ""
    first = addresses[0]
    address = f"{first.mailbox or ''}@{first.host or ''}" if first.host else (first.mailbox or "")
    name = decode_header_value(first.name) if first.name else ""
    return (name or address), address


def names(addresses: list[Address] | None) -> str:
    if not addresses:
        return ""
    out = []
    for a in addresses:
        if a.host is None:
            continue
        name = decode_header_value(a.name) if a.name else ""
        out.append(name or f"{a.mailbox}@{a.host}")
    return ", ".join(out)


def make_row(rec: MessageRecord) -> Row:
    env = envelope_from_json(rec.envelope_json)
    sender, address = display_name(env.from_)
    flags = rec.info.flags
    return Row(
        uid=rec.info.uid, sender=sender or "(no sender)", sender_address=address, recipients=names(env.to),
        subject=rec.subject or "(no subject)", date=rec.sent_date or rec.info.internal_date,
        seen=bool(flags & Flag.SEEN), flagged=bool(flags & Flag.FLAGGED), answered=bool(flags & Flag.ANSWERED),
        draft=bool(flags & Flag.DRAFT), attachment=rec.has_attachment, preview=rec.preview[:160],
        in_thread=bool(rec.in_reply_to or rec.references),
    )  # fmt: skip


def folder_tree(mailboxes: list[Mailbox], current: int | None) -> list[Folder]:
    out = []
    for m in mailboxes:
        depth = m.name.count("/")
        label = "Inbox" if m.name.upper() == "INBOX" else m.name.rsplit("/", 1)[-1]
        out.append(Folder(m, label, depth, m.id == current))
    return out


async def view_uids(wm: Webmail, session: Session, mailbox: Mailbox, query: str, field: str) -> array[int]:
    """The UIDs of a view in display order, from the session's cache while still valid."""
    # Flag changes do not move messages in a date order and no search here reads flags:
    # only arrivals (UIDNEXT) and removals (the count) make the cached order stale.
    key = (mailbox.id, mailbox.uidvalidity, mailbox.uidnext, mailbox.messages, query, field)
    if session.listing is not None and session.listing.key == key:
        return session.listing.uids
    # Newest first, and among equal dates the last arrived first: the ascending order
    # (ties by UID) reversed.
    uids = array("I", await wm.store.sort(mailbox.id, [SortKey("date")], search_key(query, field)))
    uids.reverse()
    session.listing = Listing(key, uids)
    return uids


async def page_rows(wm: Webmail, mailbox: Mailbox, uids: array[int] | list[int]) -> list[Row]:
    records = {rec.info.uid: rec for rec in await wm.store.get_records(mailbox.id, list(uids))}
    return [make_row(records[uid]) for uid in uids if uid in records]


async def mailbox_page(wm: Webmail, request: Request, session: Session) -> Response:
    mailbox = await wm.mailbox(session, int(request.path_params["mailbox_id"]))
    if mailbox.noselect:
        raise WebError(400, "This folder holds only other folders")
    query = request.query_params.get("q", "")[:MAX_QUERY]
    field = request.query_params.get("in", "all")
    if field not in FIELDS:
        field = "all"
    from courriel.webmail.threads import page_threads, thread_listing  # it builds on this module

    view = request.query_params.get("view")
    if view in ("list", "conversations"):
        session.conversations = view == "conversations"  # remembered for the session
    # A search shows the matching messages themselves, as a list.
    conversations = session.conversations and not query
    threads: list[ThreadRow] = []
    rows: list[Row] = []
    if conversations:
        listing = await thread_listing(wm, mailbox)
        total = len(listing.order)
        pages = max(1, -(-total // PAGE_SIZE))
        page = int_param(request.query_params.get("page"), 1, 1, pages)
        threads = await page_threads(wm, mailbox, listing, page)
    else:
        uids = await view_uids(wm, session, mailbox, query, field)
        total = len(uids)
        pages = max(1, -(-total // PAGE_SIZE))
        page = int_param(request.query_params.get("page"), 1, 1, pages)
        rows = await page_rows(wm, mailbox, uids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    values = dict(
        mailbox=mailbox, rows=rows, threads=threads, conversations=conversations, page=page, pages=pages,
        total=total, query=query, field=field, notice=request.query_params.get("notice", "")[:200],
        **await wm.chrome(session, mailbox.id),
    )  # fmt: skip
    if request.query_params.get("partial") == "list":
        return wm.render("_list.html", **values)
    return wm.render("mailbox.html", **values)


async def folders(wm: Webmail, request: Request, session: Session) -> Response:
    """The folder tree alone (the script reloads it on live updates)."""
    return wm.render("_folders.html", **await wm.chrome(session, number(request.query_params.get("current"))))


async def search_redirect(wm: Webmail, request: Request, session: Session) -> Response:
    """The search box of a page that shows no folder searches the Inbox."""
    mailbox = await wm.store.get_mailbox(session.user_id, "INBOX")
    if mailbox is None:
        raise WebError(404, "No Inbox")
    params = urlencode({"q": request.query_params.get("q", "")[:MAX_QUERY], "in": request.query_params.get("in", "all")})
    return RedirectResponse(f"/mail/box/{mailbox.id}?{params}", status_code=303)


async def inbox(wm: Webmail, request: Request, session: Session) -> Response:
    mailbox = await wm.store.get_mailbox(session.user_id, "INBOX")
    if mailbox is None:
        mailbox = await wm.store.create_mailbox(session.user_id, "INBOX")
    return RedirectResponse(f"/mail/box/{mailbox.id}", status_code=303)

