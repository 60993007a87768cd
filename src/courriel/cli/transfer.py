"""``courriel import`` and ``courriel export``: mbox and Maildir in and out of a mailbox, byte-exact."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from courriel import mailformats
from courriel.cli.admin import with_store
from courriel.cli.main import CommandError
from courriel.store.api import INBOX, Flag, Mailbox, NewMessage, Store

BATCH = 256


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="bring mail in from an mbox file or a Maildir")
    p.add_argument("address")
    p.add_argument("path", type=Path)
    p.add_argument("--mailbox", default=INBOX, help="target mailbox (created if missing; default INBOX)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=with_store(cmd_import))
    p = sub.add_parser("export", help="write a mailbox out as mbox or Maildir")
    p.add_argument("address")
    p.add_argument("path", type=Path)
    p.add_argument("--mailbox", default=INBOX)
    p.add_argument("--format", choices=("mbox", "maildir"), default="mbox")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=with_store(cmd_export))


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=quiet,
        transient=False,
    )


async def _mailbox(store: Store, address: str, name: str, create: bool) -> Mailbox:
    user = await store.get_user(address)
    if user is None:
        raise CommandError(f"no user {address}")
    mbox = await store.get_mailbox(user.id, name)
    if mbox is None and create:
        mbox = await store.create_mailbox(user.id, name)
    if mbox is None or mbox.noselect:
        raise CommandError(f"{address} has no mailbox {name}")
    return mbox


def _items(path: Path) -> Iterator[mailformats.MailItem]:
    fmt = mailformats.detect_format(path)
    return mailformats.read_mbox(path) if fmt == "mbox" else mailformats.read_maildir(path)


async def cmd_import(store: Store, args: argparse.Namespace) -> int:
    if not args.path.exists():
        raise CommandError(f"{args.path} does not exist")
    mbox = await _mailbox(store, args.address, args.mailbox, create=True)
    total = mailformats.count_messages(args.path)
    done = 0
    with _progress(args.quiet) as progress:
        task = progress.add_task(f"importing into {mbox.name}", total=total)
        batch: list[NewMessage] = []
        for item in _items(args.path):
            flags, keywords = Flag.parse(item.flags)
            batch.append(NewMessage(item.data, flags, item.keywords | keywords, item.internal_date, item.envelope_from))
            if len(batch) >= BATCH:
                await store.append_many(mbox.id, batch)
                done += len(batch)
                progress.update(task, completed=done)
                batch = []
        if batch:
            await store.append_many(mbox.id, batch)
            done += len(batch)
            progress.update(task, completed=done)
    print(f"imported {done} messages into {args.address} {mbox.name}")
    return 0


async def cmd_export(store: Store, args: argparse.Namespace) -> int:
    mbox = await _mailbox(store, args.address, args.mailbox, create=False)
    infos = await store.list_messages(mbox.id)
    written = 0
    with _progress(args.quiet) as progress:
        task = progress.add_task(f"exporting {mbox.name}", total=len(infos))
        if args.format == "mbox":
            if args.path.exists() and args.path.is_dir():
                raise CommandError(f"{args.path} is a directory; use --format maildir")
            with args.path.open("ab") as fh:
                for chunk in _chunks([i.uid for i in infos], BATCH):
                    written += mailformats.write_mbox(fh, [item async for item in _read(store, mbox.id, chunk)])
                    progress.update(task, completed=written)
        else:
            writer = mailformats.MaildirWriter(args.path)
            try:
                for chunk in _chunks([i.uid for i in infos], BATCH):
                    async for item in _read(store, mbox.id, chunk):
                        writer.write(item)
                        written += 1
                    progress.update(task, completed=written)
            finally:
                writer.close()
    print(f"exported {written} messages from {args.address} {mbox.name} to {args.path}")
    return 0


def _chunks(seq: list[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


async def _read(store: Store, mailbox_id: int, uids: list[int]) -> Any:
    for rec in await store.get_records(mailbox_id, uids):
        data = await store.read_message(rec.blob)
        yield mailformats.MailItem(
            data=data,
            envelope_from=rec.mail_from,
            internal_date=rec.info.internal_date,
            flags=frozenset(rec.info.flags.names()),
            keywords=rec.info.keywords,
        )
