"""``courriel domain|user|alias|store ...``: administration through the store API."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from courriel.auth.passwords import generate_password
from courriel.cli.main import CommandError, data_dir, run_async
from courriel.config import load_config
from courriel.store import open_store
from courriel.store.api import Store

StoreFn = Callable[[Store, argparse.Namespace], Awaitable[int]]


def with_store(fn: StoreFn) -> Callable[[argparse.Namespace], int]:
    """Wrap an async command so that it runs with the data directory's store open."""

    def command(args: argparse.Namespace) -> int:
        cfg = load_config(data_dir(args))

        async def run() -> int:
            store = await open_store(cfg)
            try:
                return await fn(store, args)
            finally:
                await store.close()

        return run_async(run)

    return command


def register(sub: Any) -> None:
    dom = sub.add_parser("domain", help="local domains").add_subparsers(dest="action", required=True)
    p = dom.add_parser("add", help="add a local domain")
    p.add_argument("domain")
    p.set_defaults(func=with_store(domain_add))
    dom.add_parser("list", help="list local domains").set_defaults(func=with_store(domain_list))
    p = dom.add_parser("del", help="remove a local domain (it must have no users)")
    p.add_argument("domain")
    p.set_defaults(func=with_store(domain_del))

    usr = sub.add_parser("user", help="accounts").add_subparsers(dest="action", required=True)
    p = usr.add_parser("add", help="add an account")
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--quota-bytes", type=int, default=None, help="storage quota in bytes (0: none)")
    p.add_argument("--quota-messages", type=int, default=None, help="message count quota (0: none)")
    p.set_defaults(func=with_store(user_add))
    p = usr.add_parser("passwd", help="change an account's password")
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=with_store(user_passwd))
    p = usr.add_parser("del", help="remove an account and all its mail")
    p.add_argument("address")
    p.set_defaults(func=with_store(user_del))
    p = usr.add_parser("list", help="list accounts")
    p.add_argument("--domain")
    p.set_defaults(func=with_store(user_list))
    p = usr.add_parser("apop", help="set the separate APOP secret of an account (POP3, RFC 1939 §7)")
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true", help="read the secret from standard input")
    p.add_argument("--remove", action="store_true", help="remove the secret (APOP refused)")
    p.set_defaults(func=with_store(user_apop))
    p = usr.add_parser("quota", help="show or set an account's quota (0: unlimited)")
    p.add_argument("address")
    p.add_argument("--bytes", type=int, default=None, help="storage quota in bytes")
    p.add_argument("--messages", type=int, default=None, help="message count quota")
    p.set_defaults(func=with_store(user_quota))

    als = sub.add_parser("alias", help="aliases and catch-alls").add_subparsers(dest="action", required=True)
    p = als.add_parser("add", help="add an alias (ALIAS: local@domain, or @domain for a catch-all)")
    p.add_argument("alias")
    p.add_argument("targets", nargs="+", metavar="TARGET", help="local or external addresses")
    p.set_defaults(func=with_store(alias_add))
    als.add_parser("list", help="list aliases").set_defaults(func=with_store(alias_list))
    p = als.add_parser("del", help="remove an alias, or some of its targets")
    p.add_argument("alias")
    p.add_argument("targets", nargs="*", metavar="TARGET")
    p.set_defaults(func=with_store(alias_del))

    sto = sub.add_parser("store", help="the store itself").add_subparsers(dest="action", required=True)
    sto.add_parser("check", help="verify the store's invariants").set_defaults(func=with_store(store_check))
    sto.add_parser("stats", help="counts and sizes").set_defaults(func=with_store(store_stats))
    from courriel.cli import storecopy

    storecopy.register(sto)


def read_password(args: argparse.Namespace, address: str) -> tuple[str, bool]:
    """(password, generated). From stdin with --password-stdin, a prompt on a terminal, else generated."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("empty password on standard input")
        return password, False
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {address}: ")
        if first != getpass.getpass("again: "):
            raise CommandError("the passwords differ")
        if not first:
            raise CommandError("empty password")
        return first, False
    return generate_password(), True


async def domain_add(store: Store, args: argparse.Namespace) -> int:
    d = await store.add_domain(args.domain)
    print(f"added domain {d.name}")
    return 0


async def domain_list(store: Store, args: argparse.Namespace) -> int:
    for d in await store.list_domains():
        print(d.name)
    return 0


async def domain_del(store: Store, args: argparse.Namespace) -> int:
    await store.delete_domain(args.domain)
    print(f"removed domain {args.domain}")
    return 0


async def user_add(store: Store, args: argparse.Namespace) -> int:
    password, generated = read_password(args, args.address)
    cfg = load_config(data_dir(args))
    qb = args.quota_bytes if args.quota_bytes is not None else cfg.quota.default_bytes
    qm = args.quota_messages if args.quota_messages is not None else cfg.quota.default_messages
    user = await store.add_user(args.address, password, qb, qm)
    print(f"added user {user.address}")
    if generated:
        print(f"password: {password}")
    return 0


async def user_passwd(store: Store, args: argparse.Namespace) -> int:
    password, generated = read_password(args, args.address)
    await store.set_password(args.address, password)
    print(f"changed the password of {args.address}")
    if generated:
        print(f"password: {password}")
    return 0


async def user_del(store: Store, args: argparse.Namespace) -> int:
    await store.delete_user(args.address)
    print(f"removed user {args.address} and its mail")
    return 0


async def user_apop(store: Store, args: argparse.Namespace) -> int:
    """APOP needs a secret the server can read (RFC 1939 §7), so it is not the password."""
    if args.remove:
        await store.set_apop_secret(args.address, None)
        print(f"removed the APOP secret of {args.address}")
        return 0
    if await store.get_user(args.address) is None:
        raise CommandError(f"no user {args.address}")
    secret, generated = read_password(args, args.address)
    await store.set_apop_secret(args.address, secret)
    print(f"set the APOP secret of {args.address}")
    if generated:
        print(f"APOP secret: {secret}")
    return 0


async def user_quota(store: Store, args: argparse.Namespace) -> int:
    """Set the limits given (the others stay), then show limits and usage."""
    user = await store.get_user(args.address)
    if user is None:
        raise CommandError(f"no user {args.address}")
    if any(v is not None and v < 0 for v in (args.bytes, args.messages)):
        raise CommandError("quotas must be 0 (unlimited) or positive")
    if args.bytes is not None or args.messages is not None:
        qb = args.bytes if args.bytes is not None else user.quota_bytes
        qm = args.messages if args.messages is not None else user.quota_messages
        await store.set_quota(args.address, qb, qm)
        user = await store.get_user(args.address)
        assert user is not None
    usage = await store.usage(user.id)
    print(
        f"{user.address}\tbytes {usage.bytes}/{user.quota_bytes or 'unlimited'}"
        f"\tmessages {usage.messages}/{user.quota_messages or 'unlimited'}"
    )
    return 0


async def user_list(store: Store, args: argparse.Namespace) -> int:
    for u in await store.list_users(args.domain):
        usage = await store.usage(u.id)
        quota = f"{u.quota_bytes}" if u.quota_bytes else "unlimited"
        print(f"{u.address}\t{usage.messages} messages\t{usage.bytes} bytes\tquota {quota}")
    return 0


async def alias_add(store: Store, args: argparse.Namespace) -> int:
    alias = await store.add_alias(args.alias, args.targets)
    print(f"{alias.address} -> {', '.join(alias.targets)}")
    return 0


async def alias_list(store: Store, args: argparse.Namespace) -> int:
    for alias in await store.list_aliases():
        print(f"{alias.address} -> {', '.join(alias.targets)}")
    return 0


async def alias_del(store: Store, args: argparse.Namespace) -> int:
    await store.delete_alias(args.alias, args.targets)
    print(f"removed {args.alias}" + (f" -> {', '.join(args.targets)}" if args.targets else ""))
    return 0


async def store_check(store: Store, args: argparse.Namespace) -> int:
    problems = await store.check()
    for p in problems:
        print(p)
    if problems:
        return 1
    print("store is sound")
    return 0


async def store_stats(store: Store, args: argparse.Namespace) -> int:
    s = await store.stats()
    print(f"users {s.users}, mailboxes {s.mailboxes}, messages {s.messages}, bytes {s.bytes}")
    for k, v in s.extra.items():
        print(f"{k} {v}")
    return 0
