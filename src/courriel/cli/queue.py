"""``courriel queue list|flush|delete``: the outbound queue, through the store API.

``list`` shows each recipient's state, attempts, next attempt and last error; ``flush``
makes every waiting recipient due now (the outbound service picks them up at its next look);
``delete`` removes a message.
"""

from __future__ import annotations

import argparse
from typing import Any

from courriel.cli.admin import with_store
from courriel.store.api import Store


def register(sub: Any) -> None:
    q = sub.add_parser("queue", help="the outbound queue").add_subparsers(dest="action", required=True)
    q.add_parser("list", help="list queued messages and their recipients").set_defaults(func=with_store(queue_list))
    q.add_parser("flush", help="retry every waiting recipient now").set_defaults(func=with_store(queue_flush))
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
            nxt = ""
            if r.state == "deferred":
                nxt = "\tnext " + r.next_attempt.strftime("%Y-%m-%d %H:%M:%S")
            print(f"\t<{r.address}>\t{r.state}\tattempts {r.attempts}\t{notes}{nxt}{error}".rstrip())
    if not entries:
        print("queue is empty")
    return 0


async def queue_flush(store: Store, args: argparse.Namespace) -> int:
    count = await store.flush_queue()
    print(f"{count} recipient(s) due now")
    return 0


async def queue_delete(store: Store, args: argparse.Namespace) -> int:
    await store.delete_queued(args.id)
    print(f"removed queued message {args.id}")
    return 0
