"""Run every benchmark and print one table of ratios."""

from __future__ import annotations

import argparse
import asyncio

from bench import imap, smtp, store_append


def main() -> None:
    p = argparse.ArgumentParser(prog="make bench")
    p.add_argument("--quick", action="store_true", help="a short run (as inside make test)")
    args = p.parse_args()
    asyncio.run(store_append.run(quick=args.quick))
    smtp.run(quick=args.quick)
    imap.run(quick=args.quick)


if __name__ == "__main__":
    main()
