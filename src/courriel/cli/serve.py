"""``courriel serve``: run the services."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from courriel.cli.main import data_dir, run_async
from courriel.config import load_config
from courriel.logs import setup_logging


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the mail services",
        description="Run every enabled listener of courriel.toml (smtp, submission, submissions, imap, "
        "imaps, pop3, pop3s, http, managesieve, lmtp, lookup) and the background services (outbound "
        "queue, spam filter) in one process. One line per listener is printed when ready; SIGTERM "
        "or Ctrl-C stops cleanly, SIGHUP reloads the TLS certificate.",
    )
    p.add_argument("--only", help="comma-separated services to run (e.g. smtp,imap)")
    p.add_argument("--log-format", choices=("text", "json"), help="overrides server.log_format")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from courriel.server import serve

    cfg = load_config(data_dir(args))
    raise_fd_limit()
    if args.log_format:
        cfg.server.log_format = args.log_format
    setup_logging(cfg.server.log_level, cfg.server.log_format)
    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None
    ready = functools.partial(print, flush=True)
    return run_async(serve, cfg, only, ready)


def raise_fd_limit() -> None:
    """Every connection costs a file descriptor: allow as many as the hard limit permits
    (Debian's soft default of 1,024 is below [limits] max_connections)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
