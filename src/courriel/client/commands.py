"""``courriel mail`` commands that write: accounts, send, reply, forward, fetch."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path

from courriel.mime import html_to_text

from . import render
from .accounts import Account, AccountFile, Server, config_path, parse_server, state_dir
from .compose import (
    Draft,
    addresses,
    envelope_address,
    forward_draft,
    load_attachments,
    reply_draft,
)
from .editor import edit
from .errors import ClientError
from .fetch import FetchResult, imap_fetch, pop3_fetch
from .imap import DRAFTS, SENT, mailboxes
from .message import view
from .smtp import submit


def load(args: argparse.Namespace) -> tuple[AccountFile, Account]:
    book = AccountFile.load(config_path(args.config))
    return book, book.get(args.account)


# -- accounts -------------------------------------------------------------------------


def account_add(args: argparse.Namespace) -> int:
    book = AccountFile.load(config_path(args.config))
    old = book.accounts.get(args.name)
    account = Account(name=args.name, address=args.address, user=args.user or "")
    if old is not None:  # keep what is not given again
        for key in ("imap", "smtp", "pop3", "password_env", "password_command", "ca_file", "maildir",
                    "sent_folder", "drafts_folder", "charset", "user"):  # fmt: skip
            if not getattr(account, key) or (key == "charset" and account.charset == "utf-8"):
                setattr(account, key, getattr(old, key))
    for service in ("imap", "smtp", "pop3"):
        value = getattr(args, service)
        if value:
            setattr(account, service, parse_server(service, value, getattr(args, f"{service}_tls")))
        elif getattr(args, f"{service}_tls") and getattr(account, service) is not None:
            srv: Server = getattr(account, service)
            setattr(account, service, parse_server(service, srv.host, getattr(args, f"{service}_tls")))
    for key in ("password_env", "password_command", "ca_file", "maildir", "sent_folder", "drafts_folder", "charset"):
        value = getattr(args, key)
        if value:
            setattr(account, key, value)
    if account.ca_file:
        ca = Path(account.ca_file).expanduser().resolve()
        if not ca.is_file():
            raise ClientError(f"no such CA file: {ca}")
        account.ca_file = str(ca)
    addresses([account.address])  # validates
    if args.discover or not (account.imap or account.smtp or account.pop3):
        from .autoconfig import discover

        domain = account.email.rpartition("@")[2]
        found = discover(domain)
        for service, server in found.items():
            if getattr(account, service) is None:
                setattr(account, service, server)
                render.console.print(f"{service}: found {server}", markup=False)
        if not (account.imap or account.smtp or account.pop3):
            raise ClientError(f"no mail servers found for {domain}; give --imap, --smtp and --pop3")
    book.accounts[args.name] = account
    if args.default or not book.default:
        book.default = args.name
    book.save()
    render.console.print(f"account {args.name} saved in {book.path}", markup=False)
    return 0


def account_list(args: argparse.Namespace) -> int:
    book = AccountFile.load(config_path(args.config))
    if args.json:
        render.print_json({name: {"default": name == book.default, **a.to_table()} for name, a in book.accounts.items()})
        return 0
    if not book.accounts:
        render.console.print(f"no accounts in {book.path}", markup=False)
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Accounts ({book.path})")
    for col in ("Name", "Address", "Login", "IMAP", "SMTP", "POP3", "Password from"):
        table.add_column(col, overflow="fold")
    for name, a in book.accounts.items():
        source = (f"${a.password_env}" if a.password_env else "") or (a.password_command and "command") or "prompt"
        table.add_row(Text(name + (" *" if name == book.default else "")), Text(a.address), Text(a.login),
                      str(a.imap or ""), str(a.smtp or ""), str(a.pop3 or ""), source)  # fmt: skip
    render.console.print(table)
    return 0


def account_remove(args: argparse.Namespace) -> int:
    book = AccountFile.load(config_path(args.config))
    if args.name not in book.accounts:
        raise ClientError(f"no account {args.name!r} in {book.path}")
    del book.accounts[args.name]
    if book.default == args.name:
        book.default = next(iter(book.accounts), "")
    book.save()
    render.console.print(f"account {args.name} removed", markup=False)
    return 0


# -- composing and sending --------------------------------------------------------------


def _read_body(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        return Path(path).expanduser().read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(f"{path}: the body must be UTF-8 text") from None
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from None


def _apply_options(draft: Draft, args: argparse.Namespace, subject: str | None) -> bool:
    """Fill the draft from the flags; True when the editor should open."""
    draft.to += addresses(args.to)
    draft.cc += addresses(args.cc)
    draft.bcc += addresses(args.bcc)
    if args.reply_to:
        draft.reply_to = addresses(args.reply_to)
    if subject is not None:
        draft.subject = subject
    if args.charset:
        draft.charset = args.charset
    body: str | None = None
    if args.body:
        body = _read_body(args.body)
    if args.html:
        draft.html = _read_body(args.html)
        if body is None:
            body = html_to_text(draft.html)
    draft.attachments += load_attachments(args.attach)
    editing = bool(args.edit)
    if body is None and not editing:
        if sys.stdin.isatty():
            editing = True
        else:
            body = _read_body("-")
    if body is not None:
        draft.text = body + draft.text  # above the quote or the forwarded message
    return editing


def _message_id(account: Account) -> str:
    domain = account.email.rpartition("@")[2] or "localhost"
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"{int(time.time() * 1000):x}.{secrets.token_hex(8)}@{domain}"


def _dispatch(account: Account, draft: Draft, args: argparse.Namespace) -> tuple[str, str]:
    """Send (or save as a draft); (message id, what happened)."""
    mid = _message_id(account)
    date = datetime.now().astimezone()
    if args.draft:
        copy = draft.build(keep_bcc=True, message_id=mid, date=date)
        with mailboxes(account) as mb:
            folder = mb.special(DRAFTS, account.drafts_folder, "Drafts")
            mb.append(folder, copy, ["\\Draft", "\\Seen"])
        return mid, f"saved to {folder}"
    wire = draft.build(keep_bcc=False, message_id=mid, date=date)
    recipients = draft.recipients()
    submit(account, envelope_address(account.email), recipients, wire)
    done = f"sent to {len(recipients)} recipient{'s' if len(recipients) != 1 else ''}"
    if args.no_save or account.imap is None:
        return mid, done
    try:
        copy = draft.build(keep_bcc=True, message_id=mid, date=date)
        with mailboxes(account) as mb:
            folder = mb.special(SENT, account.sent_folder, "Sent")
            mb.append(folder, copy, ["\\Seen"])
    except ClientError as exc:
        raise ClientError(f"{done}, but the copy to Sent was not saved: {exc}") from None
    return mid, f"{done}; copy saved to {folder}"


def send(args: argparse.Namespace) -> int:
    _book, account = load(args)
    draft = Draft(from_=addresses([account.address]), charset=account.charset)
    if _apply_options(draft, args, args.subject):
        draft = edit(draft)
    mid, done = _dispatch(account, draft, args)
    render.console.print(f"<{mid}> {done}", markup=False)
    return 0


def _answer(args: argparse.Namespace, forward: bool) -> int:
    _book, account = load(args)
    with mailboxes(account) as mb:
        raw = mb.fetch_raw(args.folder, args.uid, mark_seen=False)
    original = view(raw)
    draft = forward_draft(account, original, args.as_attachment) if forward else reply_draft(account, original, args.all)
    if _apply_options(draft, args, None):
        draft = edit(draft)
    mid, done = _dispatch(account, draft, args)
    if not args.draft:
        flag = "$Forwarded" if forward else "\\Answered"
        with mailboxes(account) as mb:
            mb.set_flags(args.folder, [args.uid], [flag], True)
    render.console.print(f"<{mid}> {done}", markup=False)
    return 0


def reply(args: argparse.Namespace) -> int:
    return _answer(args, forward=False)


def forward(args: argparse.Namespace) -> int:
    return _answer(args, forward=True)


# -- fetching -----------------------------------------------------------------------------


def fetch(args: argparse.Namespace) -> int:
    book, account = load(args)
    protocol = args.protocol or ("pop3" if account.pop3 is not None else "imap")
    maildir = Path(args.maildir or account.maildir or Path.home() / "Mail" / account.name).expanduser()
    state = state_dir(book.path)
    result: FetchResult
    with render.TransferProgress(f"{protocol.upper()} {account.name}") as progress:
        if protocol == "pop3":
            result = pop3_fetch(account, maildir, state, args.delete, progress)
        else:
            with mailboxes(account) as mb:
                result = imap_fetch(mb, args.folder, maildir, state, args.delete, progress)
    deleted = f", {result.deleted} deleted on the server" if result.deleted else ""
    render.console.print(
        f"{result.fetched} new message{'s' if result.fetched != 1 else ''} "
        f"({render.human_size(result.octets)}) into {maildir}; {result.skipped} already fetched{deleted}",
        markup=False,
    )
    return 0
