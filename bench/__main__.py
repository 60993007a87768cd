"""Run every benchmark and print one table of ratios."""

from __future__ import annotations

import argparse
import asyncio

from bench import (
    client_fetch,
    imap,
    imap_append,
    imap_load,
    imap_scale,
    imap_sync,
    jmap,
    lmtp,
    nodes,
    outbound,
    pop3,
    sieve,
    smtp,
    store_append,
    store_postgres,
    trace,
    webmail,
    webmail_sessions,
)


def main() -> None:
    p = argparse.ArgumentParser(prog="make bench")
    p.add_argument("--quick", action="store_true", help="a short run (as inside make test)")
    args = p.parse_args()
    asyncio.run(store_append.run(quick=args.quick))
    asyncio.run(store_postgres.run(quick=args.quick))
    smtp.run(quick=args.quick)
    lmtp.run(quick=args.quick)
    imap.run(quick=args.quick)
    imap_scale.run(quick=args.quick)
    imap_append.run(quick=args.quick)
    imap_load.run(quick=args.quick)
    imap_sync.run(quick=args.quick)
    pop3.run(quick=args.quick)
    sieve.run(quick=args.quick)
    client_fetch.run(quick=args.quick)
    outbound.run(quick=args.quick)
    nodes.run(quick=args.quick)
    webmail.run(quick=args.quick)
    webmail_sessions.run(quick=args.quick)
    jmap.run(quick=args.quick)
    trace.run(quick=args.quick)


if __name__ == "__main__":
    main()
