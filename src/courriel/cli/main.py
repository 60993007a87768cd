"""The ``courriel`` command: administration (init, domain, user, alias, import, export) and serve."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from courriel import __version__
from courriel.config import ConfigError

DEFAULT_DATA = "./courriel-data"

EPILOG = """\
getting started:
  courriel init ./courriel-data --domain example.org   a data directory (loopback, dev ports)
  courriel user add alice@example.org                   an account (password asked)
  courriel serve                                        every service; Ctrl-C stops
  courriel dns example.org                              the DNS records to publish

`courriel COMMAND --help` describes each command. Configuration: DIR/courriel.toml; any key
can be overridden by COURRIEL_<SECTION>_<KEY> (e.g. COURRIEL_IMAP_LISTEN=127.0.0.1:1143).
"""


def data_dir(args: argparse.Namespace) -> Path:
    """``-d``, then ``$COURRIEL_DATA``, then ``./courriel-data`` (DESIGN.md)."""
    return Path(args.data or os.environ.get("COURRIEL_DATA") or DEFAULT_DATA)


def build_parser() -> argparse.ArgumentParser:
    from courriel.cli import admin, init, serve, transfer
    from courriel.cli import queue as queue_cli

    p = argparse.ArgumentParser(
        prog="courriel",
        description="A complete Internet mail system: SMTP (MX and submission), IMAP, POP3, JMAP, "
        "webmail, and a mail client, in one program.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-d", "--data", metavar="DIR", help="data directory ($COURRIEL_DATA, else ./courriel-data)")
    p.add_argument("--version", action="version", version=f"courriel {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    init.register(sub)
    serve.register(sub)
    admin.register(sub)
    transfer.register(sub)
    queue_cli.register(sub)
    from courriel.cli import dkim as dkim_cli

    dkim_cli.register(sub)
    from courriel.cli import migrate as migrate_cli

    migrate_cli.register(sub)
    from courriel.cli import dns as dns_cli

    dns_cli.register(sub)
    from courriel.cli import token as token_cli

    token_cli.register(sub)
    from courriel.cli import cert as cert_cli

    cert_cli.register(sub)
    from courriel.client import cli as mail_cli

    mail_cli.register(sub)
    from courriel.cli import trace as trace_cli

    trace_cli.register(sub)
    from courriel.cli import explain as explain_cli

    explain_cli.register(sub)
    from courriel.cli import journey as journey_cli

    journey_cli.register(sub)
    return p


class CommandError(Exception):
    """An error to print without a traceback (exit status 1)."""


def run_async(fn: Callable[..., Coroutine[Any, Any, int]], *args: Any) -> int:
    try:
        import uvloop

        return uvloop.run(fn(*args))
    except ImportError:
        return asyncio.run(fn(*args))


def main(argv: Sequence[str] | None = None) -> int:
    from courriel.store.api import StoreError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (CommandError, ConfigError, StoreError, ValueError, OSError) as exc:
        print(f"courriel: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
