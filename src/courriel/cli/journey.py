"""``courriel journey ADDR MESSAGE-ID``: the trip of one of ADDR's stored messages.

Shows the five steps (① submission, ② each MTA hop, ③ local delivery with the mailboxes and
Sieve actions, ④ POP3 and ⑤ IMAP retrievals: every one, with time, client and protocol) as a
timeline with the delays between them, TLS and authentication, and the transcript of each
step this server recorded (see `courriel trace` and [trace] in the configuration). ``--json`` prints the same as JSON (the webmail's journey page uses it).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from courriel.cli.admin import with_store
from courriel.cli.main import CommandError, data_dir
from courriel.store.api import Store
from courriel.trace.events import journey_events


def register(sub: Any) -> None:
    p = sub.add_parser(
        "journey",
        help="show a stored message's trip: submission, hops, delivery, retrievals",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("address", metavar="ADDR", help="the mailbox owner")
    p.add_argument("message_id", metavar="MESSAGE-ID", help="the Message-ID (with or without <>)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=with_store(journey_command))


async def find_journey(store: Store, address: str, message_id: str, traces: Any) -> dict[str, Any] | None:
    """The journey of the first copy of ``message_id`` in ``address``'s mailboxes."""
    from courriel.trace.journey import build

    user = await store.get_user(address)
    if user is None:
        raise CommandError(f"no such user: {address}")
    wanted = message_id.strip().strip("<>")
    for m in await store.account_messages(user.id):
        if (m.message_id or "").strip("<>") == wanted:
            mailbox = await store.get_mailbox_by_id(m.mailbox_id)
            data = (await store.read_messages(m.mailbox_id, [m.uid])).get(m.uid)
            if data is None or mailbox is None:
                continue
            events = await journey_events(store, user.id, m.content_id, m.message_id or "")
            return build(data, user.address, mailbox.name, m.internal_date, traces, events)
    return None


async def journey_command(store: Store, args: argparse.Namespace) -> int:
    from rich.console import Console

    from courriel.trace.journey import render
    from courriel.trace.service import traces_dir

    found = await find_journey(store, args.address, args.message_id, traces_dir(data_dir(args)))
    if found is None:
        raise CommandError(f"{args.address} has no message with Message-ID <{args.message_id.strip('<>')}>")
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        render(found, Console(highlight=False))
    return 0
