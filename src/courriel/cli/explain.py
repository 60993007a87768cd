"""``courriel explain FILE|-``: a raw message's MIME tree and its authentication results.

Prints the parts (type, charset, transfer encoding, size, lines, file name), the parser's
defects and the Authentication-Results fields the message carries. ``--verify`` checks its
DKIM signatures now, and SPF and DMARC too when ``--ip`` (with ``--mail-from`` and/or
``--helo``) says where it came from; DNS is the system resolver or ``--dns HOST:PORT``.
``--json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from courriel.cli.main import CommandError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="show a raw message's MIME structure and authentication results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="the message (RFC 5322 bytes), or - for standard input")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--verify", action="store_true", help="verify DKIM now (and SPF/DMARC with --ip)")
    p.add_argument("--ip", help="the sending server's address (for SPF)")
    p.add_argument("--helo", default="", help="its HELO/EHLO name (for SPF)")
    p.add_argument("--mail-from", default="", help="the envelope sender (for SPF)")
    p.add_argument("--dns", default="", metavar="HOST:PORT", help="DNS server (default: the system's)")
    p.set_defaults(func=explain_command)


def read_message(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise CommandError(f"{name}: {exc.strerror or exc}") from None


async def verify(data: bytes, args: argparse.Namespace) -> list[dict[str, Any]]:
    """DKIM (always), SPF and DMARC (with --ip) through courriel.mailauth."""
    from courriel.mailauth import dkim, dmarc, spf
    from courriel.mailauth.inbound import from_domain
    from courriel.queue.dns import Dns

    if b"\r\n" not in data:
        data = data.replace(b"\n", b"\r\n")  # a file saved with LF line ends
    resolver = Dns(args.dns, timeout=5.0)
    out: list[dict[str, Any]] = []
    dkim_results = await asyncio.to_thread(dkim.verify, data, resolver.txt_sync)
    for d in dkim_results:
        out.append({"method": "dkim", "result": d.result, "header.d": d.domain, "header.s": d.selector,
                    "reason": d.reason})  # fmt: skip
    if args.ip:
        spf.use_dns(resolver)
        s = await asyncio.to_thread(spf.check, args.ip, args.mail_from, args.helo)
        out.append({"method": "spf", "result": s.result, f"smtp.{s.identity}": s.domain, "reason": s.explanation})
        end = data.find(b"\r\n\r\n")
        domain = from_domain(data[: end + 2] if end >= 0 else data)
        m = await dmarc.evaluate(domain, s, dkim_results, resolver.txt)
        out.append({"method": "dmarc", "result": m.result, "header.from": m.from_domain, "policy": m.policy,
                    "reason": m.reason})  # fmt: skip
    return out


def explain_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from courriel.trace.explain import explain, render

    data = read_message(args.file)
    if not data.strip():
        raise CommandError(f"{args.file}: empty message")
    info = explain(data)
    verified = asyncio.run(verify(data, args)) if args.verify else None
    if args.json:
        print(json.dumps({**info, **({"verified": verified} if verified is not None else {})},
                         ensure_ascii=False, indent=2))  # fmt: skip
        return 0
    render(info, Console(highlight=False), verified)
    return 0
