"""``courriel serve``: run the services."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from courriel.cli.main import data_dir, run_async
from courriel.config import load_config
from courriel.logs import setup_logging


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the mail services")
    p.add_argument("--only", help="comma-separated services to run (e.g. smtp,imap)")
    p.add_argument("--log-format", choices=("text", "json"), help="overrides server.log_format")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from courriel.server import serve

    cfg = load_config(data_dir(args))
    if args.log_format:
        cfg.server.log_format = args.log_format
    setup_logging(cfg.server.log_level, cfg.server.log_format)
    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None
    ready = functools.partial(print, flush=True)
    return run_async(serve, cfg, only, ready)
