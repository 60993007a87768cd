"""``courriel dkim keygen DOMAIN`` and ``courriel dkim show DOMAIN``: DKIM keys of local domains.

Once a domain has keys, the outbound service signs its mail with them (ed25519-sha256 and
rsa-sha256); the TXT records printed here go into the domain's DNS zone.
"""

from __future__ import annotations

import argparse
from typing import Any

from courriel.cli.main import data_dir
from courriel.config import load_config
from courriel.mailauth import dkim


def register(sub: Any) -> None:
    d = sub.add_parser("dkim", help="DKIM keys for signing outgoing mail").add_subparsers(dest="action", required=True)
    p = d.add_parser("keygen", help="make ed25519 and RSA keys for a domain and print their DNS records")
    p.add_argument("domain")
    p.add_argument("--selector", default=None, help="selector prefix (default: YYYYMM)")
    p.set_defaults(func=keygen)
    p = d.add_parser("show", help="print the DNS records of a domain's keys")
    p.add_argument("domain")
    p.set_defaults(func=show)


def keygen(args: argparse.Namespace) -> int:
    cfg = load_config(data_dir(args))
    folder = cfg.path(cfg.outbound.dkim_dir)
    for key, record in dkim.generate(folder, args.domain, args.selector):
        print(f'{key.dns_name()}. IN TXT "{record}"')
    return 0


def show(args: argparse.Namespace) -> int:
    cfg = load_config(data_dir(args))
    keys = dkim.load_keys(cfg.path(cfg.outbound.dkim_dir), args.domain)
    if not keys:
        print(f"no DKIM key for {args.domain} (courriel dkim keygen {args.domain})")
        return 1
    for key in keys:
        print(f'{key.dns_name()}. IN TXT "{dkim.public_record(key)}"')
    return 0
