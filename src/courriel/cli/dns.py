"""``courriel dns DOMAIN`` prints the zone records a domain needs; ``courriel check DOMAIN``
looks them up in the live DNS and reports what is missing or different."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from courriel.cli.main import CommandError, data_dir
from courriel.config import load_config
from courriel.dnssetup import records as rec
from courriel.dnssetup.check import Lookup, check_ptr, judge
from courriel.queue.dns import Dns


def _addresses(values: list[str] | None, version: int) -> list[str]:
    out = []
    for value in values or []:
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            raise CommandError(f"{value!r} is not an IP address") from None
        if ip.version != version:
            raise CommandError(f"{value} is not an IPv{version} address")
        out.append(str(ip))
    return out


def register(sub: Any) -> None:
    p = sub.add_parser("dns", help="print the DNS records a mail domain needs (zone-file form)")
    p.add_argument("domain")
    p.add_argument("--ipv4", action="append", metavar="ADDR", help="the mail host's public IPv4 address (repeatable)")
    p.add_argument("--ipv6", action="append", metavar="ADDR", help="the mail host's public IPv6 address (repeatable)")
    p.set_defaults(func=cmd_dns)
    p = sub.add_parser("check", help="check a mail domain's DNS records against live DNS")
    p.add_argument("domain")
    p.add_argument("--ipv4", action="append", metavar="ADDR", help="expected IPv4 address of the mail host")
    p.add_argument("--ipv6", action="append", metavar="ADDR", help="expected IPv6 address of the mail host")
    p.add_argument("--dns", metavar="HOST[:PORT]", default=None, help="resolver to ask (default: [outbound] dns, else the system's)")
    p.set_defaults(func=cmd_check)


def cmd_dns(args: argparse.Namespace) -> int:
    cfg = load_config(data_dir(args))
    print(rec.zone(cfg, args.domain, _addresses(args.ipv4, 4), _addresses(args.ipv6, 6)), end="")
    return 0


_MARK = {"ok": "ok     ", "missing": "MISSING", "wrong": "WRONG  ", "error": "ERROR  "}


def cmd_check(args: argparse.Namespace) -> int:
    cfg = load_config(data_dir(args))
    servers = args.dns if args.dns is not None else cfg.outbound.dns
    lookup = Lookup(Dns(servers, timeout=5.0).sync)
    expected = rec.records(cfg, args.domain, _addresses(args.ipv4, 4), _addresses(args.ipv6, 6))
    failed_required = 0
    problems = 0
    print(f"DNS check of {args.domain} for mail host {cfg.server.hostname}:")
    for record in expected:
        verdict = judge(record, lookup)
        need = "" if record.required else " (recommended)"
        print(f"  {_MARK[verdict.status]} {record.rtype:5} {record.name}{need}")
        if not verdict.ok:
            problems += 1
            failed_required += record.required
            if verdict.found:
                print(f"          found:  {verdict.found}")
            print(f"          add:    {record.zone_line()}")
            print(f"          why:    {record.purpose}")
    host = rec.fqdn(cfg.server.hostname)
    try:
        addresses = lookup(host, "A") + lookup(host, "AAAA")
    except Exception as exc:  # dnspython raises several kinds; report, don't crash
        addresses = []
        print(f"  ERROR   address lookup of {host}: {exc}")
    if not addresses:
        failed_required += 1
        print(f"  MISSING A/AAAA {host}: the mail host has no address")
    for ip, names, ok in check_ptr(host, addresses, lookup):
        print(f"  {'ok     ' if ok else 'WRONG  '} PTR   {ip} -> {names or '(none)'}")
        problems += not ok
    if failed_required:
        print(f"{failed_required} required record(s) missing or wrong: mail to or from {args.domain} will fail.")
        return 1
    print("all required records present" + (f"; {problems} recommended one(s) to fix" if problems else ""))
    return 2 if problems else 0
