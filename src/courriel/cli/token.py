"""``courriel token add|list|del``: bearer tokens for the HTTP APIs (JMAP).

``add ADDR`` prints a new token once (only its SHA-256 is stored); ``list`` shows the ids,
owners and labels; ``del ID`` revokes one.
"""

from __future__ import annotations

import argparse
from typing import Any

from courriel.cli.admin import with_store
from courriel.jmap.auth import new_token, token_hash
from courriel.store.api import NotFound, Store


def register(sub: Any) -> None:
    t = sub.add_parser("token", help="bearer tokens for JMAP").add_subparsers(dest="action", required=True)
    p = t.add_parser("add", help="create a token for a user (printed once)")
    p.add_argument("address")
    p.add_argument("--label", default="", help="a note to recognise the token by")
    p.set_defaults(func=with_store(token_add))
    p = t.add_parser("list", help="list tokens")
    p.add_argument("address", nargs="?", help="only this user's tokens")
    p.set_defaults(func=with_store(token_list))
    p = t.add_parser("del", help="revoke a token")
    p.add_argument("id", type=int)
    p.set_defaults(func=with_store(token_del))


async def token_add(store: Store, args: argparse.Namespace) -> int:
    user = await store.get_user(args.address)
    if user is None:
        raise NotFound(f"no user {args.address}")
    secret = new_token()
    tok = await store.add_token(user.id, token_hash(secret), args.label)
    print(f"token {tok.id} for {tok.address}: {secret}")
    return 0


async def token_list(store: Store, args: argparse.Namespace) -> int:
    user_id = None
    if args.address:
        user = await store.get_user(args.address)
        if user is None:
            raise NotFound(f"no user {args.address}")
        user_id = user.id
    tokens = await store.list_tokens(user_id)
    for tok in tokens:
        print(f"{tok.id}\t{tok.address}\t{tok.created:%Y-%m-%d %H:%M:%S}\t{tok.label}".rstrip())
    if not tokens:
        print("no tokens")
    return 0


async def token_del(store: Store, args: argparse.Namespace) -> int:
    await store.delete_token(args.id)
    print(f"revoked token {args.id}")
    return 0
