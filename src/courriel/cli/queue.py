"""``courriel queue list|delete``: the outbound queue, through the store API.

Until the outbound SMTP client exists, the queue holds mail for remote recipients; these
commands show it and remove entries. ``queue flush`` comes with the outbound client.
"""

from __future__ import annotations

import argparse
from typing import Any

from courriel.cli.admin import with_store
from courriel.store.api import Store


def register(sub: Any) -> None:
    q = sub.add_parser("queue", help="the outbound queue").add_subparsers(dest="action", required=True)
    q.add_parser("list", help="list queued messages and their recipients").set_defaults(func=with_store(queue_list))
    p = q.add_parser("delete", help="remove a queued message")
    p.add_argument("id", type=int)
    p.set_defaults(func=with_store(queue_delete))


async def queue_list(store: Store, args: argparse.Namespace) -> int:
    entries = await store.list_queue()
    for m in entries:
        extra = " ".join(
            f"{k}={v}" for k, v in (("envid", m.envid), ("ret", m.ret), ("auth", m.auth_user)) if v
        )
        created = m.created.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{m.id}\t{created}\t{m.size} bytes\tfrom <{m.mail_from}>\tsmtp id {m.source or '-'}\t{extra}".rstrip())
        for r in m.recipients:
            notes = " ".join(f"{k}={v}" for k, v in (("notify", r.notify), ("orcpt", r.orcpt)) if v)
            error = f"\t{r.last_error}" if r.last_error else ""
            print(f"\t<{r.address}>\t{r.state}\tattempts {r.attempts}\t{notes}{error}".rstrip())
    if not entries:
        print("queue is empty")
    return 0


async def queue_delete(store: Store, args: argparse.Namespace) -> int:
    await store.delete_queued(args.id)
    print(f"removed queued message {args.id}")
    return 0
