"""``courriel mail`` commands on server folders over IMAP: list, read, save-attachments,
search, move, copy, flag, unflag, delete, folders."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from . import render
from .commands import load
from .errors import ClientError
from .imap import flag_name, mailboxes
from .message import safe_filename, view


def list_(args: argparse.Namespace) -> int:
    _book, account = load(args)
    if args.page < 1 or not 1 <= args.page_size <= 10_000:
        raise ClientError("--page must be 1 or more and --page-size between 1 and 10000")
    with mailboxes(account) as mb:
        uids = mb.uids(args.folder)
        pages = max(1, -(-len(uids) // args.page_size))
        end = len(uids) - (args.page - 1) * args.page_size
        chosen = uids[max(0, end - args.page_size) : max(0, end)]
        items = mb.summaries(chosen)
    if args.json:
        render.print_json(render.summaries_json(items))
        return 0
    footer = f"page {args.page} of {pages}, {len(uids)} message{'s' if len(uids) != 1 else ''}"
    if args.page < pages:
        footer += f" (older: --page {args.page + 1})"
    render.summaries_table(args.folder, items, footer)
    return 0


def read(args: argparse.Namespace) -> int:
    _book, account = load(args)
    with mailboxes(account) as mb:
        raw = mb.fetch_raw(args.folder, args.uid, mark_seen=not args.peek)
    if args.raw:
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return 0
    v = view(raw, prefer_html=args.html)
    if args.json:
        p = v.parsed
        render.print_json({
            "subject": p.subject, "from": p.from_, "to": p.to, "cc": p.cc, "reply_to": p.reply_to,
            "date": p.date.isoformat() if p.date else None, "message_id": p.message_id,
            "text": v.text, "from_html": v.from_html, "defects": p.defects,
            "attachments": [{"index": a.index, "filename": a.filename, "type": a.mime_type,
                             "size": len(v.attachment_data(a))} for a in v.attachments],
        })  # fmt: skip
        return 0
    render.message(v)
    return 0


def save_attachments(args: argparse.Namespace) -> int:
    _book, account = load(args)
    with mailboxes(account) as mb:
        raw = mb.fetch_raw(args.folder, args.uid, mark_seen=False)
    v = view(raw)
    chosen = [a for a in v.attachments if not args.index or a.index in args.index]
    missing = set(args.index) - {a.index for a in v.attachments}
    if missing:
        raise ClientError(f"no attachment number {', '.join(map(str, sorted(missing)))} (it has {len(v.attachments)})")
    if not chosen:
        render.console.print("no attachments", markup=False)
        return 0
    target = Path(args.dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    for a in chosen:
        name = safe_filename(a.filename, a.index, a.mime_type)
        path = target / name
        stem, dot, ext = name.rpartition(".")
        n = 1
        while True:  # never overwrite: name.ext, name-1.ext, ...
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                path = target / (f"{stem}-{n}.{ext}" if dot and stem else f"{name}-{n}")
                n += 1
            except OSError as exc:
                raise ClientError(f"cannot write {path}: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(v.attachment_data(a))
        render.console.print(f"saved {path}", markup=False)
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ClientError(f"not a date (YYYY-MM-DD): {text!r}") from None


def search_criteria(args: argparse.Namespace) -> list[str | date]:
    """IMAP SEARCH keys (RFC 9051 §6.4.4) from the flags, then the raw ones."""
    out: list[str | date] = []
    for key in ("from", "to", "cc", "subject", "body", "text"):
        for value in getattr(args, key):
            out += [key.upper(), value]
    if args.since:
        out += ["SINCE", _date(args.since)]
    if args.before:
        out += ["BEFORE", _date(args.before)]
    for key in ("unseen", "seen", "flagged", "answered"):
        if getattr(args, key):
            out.append(key.upper())
    out += args.criteria
    return out or ["ALL"]


def search(args: argparse.Namespace) -> int:
    _book, account = load(args)
    with mailboxes(account) as mb:
        criteria = search_criteria(args)
        found = mb.search(args.folder, criteria)
        items = mb.summaries(found[-1000:])
    if args.json:
        render.print_json(render.summaries_json(items))
        return 0
    more = " (the last 1000 shown)" if len(found) > 1000 else ""
    render.summaries_table(f"{args.folder}: search", items, f"{len(found)} found{more}")
    return 0


def move(args: argparse.Namespace) -> int:
    _book, account = load(args)
    with mailboxes(account) as mb:
        mb.move(args.folder, args.uids, args.dest)
    render.console.print(f"moved {len(args.uids)} to {args.dest}", markup=False)
    return 0


def copy(args: argparse.Namespace) -> int:
    _book, account = load(args)
    with mailboxes(account) as mb:
        mb.copy(args.folder, args.uids, args.dest)
    render.console.print(f"copied {len(args.uids)} to {args.dest}", markup=False)
    return 0


def _flags(args: argparse.Namespace, on: bool) -> int:
    _book, account = load(args)
    flags = [flag_name(f) for f in (args.flag or ["flagged"])]
    with mailboxes(account) as mb:
        mb.set_flags(args.folder, args.uids, flags, on)
    render.console.print(f"{'set' if on else 'cleared'} {' '.join(flags)} on {len(args.uids)}", markup=False)
    return 0


def flag(args: argparse.Namespace) -> int:
    return _flags(args, True)


def unflag(args: argparse.Namespace) -> int:
    return _flags(args, False)


def delete(args: argparse.Namespace) -> int:
    _book, account = load(args)
    with mailboxes(account) as mb:
        moved = mb.delete(args.folder, args.uids, trash=args.trash)
    render.console.print(f"moved {len(args.uids)} to {moved}" if moved else f"deleted {len(args.uids)}", markup=False)
    return 0


_ARITY = {"list": 0, "create": 1, "delete": 1, "subscribe": 1, "unsubscribe": 1, "rename": 2}


def folders(args: argparse.Namespace) -> int:
    _book, account = load(args)
    want = _ARITY[args.action]
    if len(args.names) != want:
        raise ClientError(f"folders {args.action} takes {want} name{'s' if want != 1 else ''}")
    with mailboxes(account) as mb:
        if args.action == "list":
            items = mb.folders()
            if args.json:
                render.print_json([{"name": f.name, "flags": list(f.flags), "subscribed": f.subscribed} for f in items])
            else:
                render.folders_table(items)
            return 0
        name = args.names[0]
        if args.action == "create":
            mb.create(name)
        elif args.action == "rename":
            mb.rename(name, args.names[1])
        elif args.action == "delete":
            mb.delete_folder(name)
        else:
            mb.subscribe(name, args.action == "subscribe")
    render.console.print(f"{args.action}: {' → '.join(args.names)} done", markup=False)
    return 0
