"""``courriel cert status`` and ``courriel cert renew [--force]``: the TLS certificate and ACME."""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from courriel.cli.main import CommandError, data_dir, run_async
from courriel.config import Config, load_config


def register(sub: Any) -> None:
    p = sub.add_parser(
        "cert",
        help="the TLS certificate: status, ACME renewal",
        description="Show the installed TLS certificate ([tls] cert) or obtain a new one from the ACME CA "
        "of [acme] (HTTP-01: the running server's http listener must be reachable on port 80 of every "
        "name). `courriel serve` renews by itself when [acme] enabled = true; it reloads a certificate "
        "renewed by this command within [tls] reload_interval seconds, or at once on SIGHUP.",
    )
    cmds = p.add_subparsers(dest="cert_command", metavar="SUBCOMMAND", required=True)
    s = cmds.add_parser("status", help="names, issuer and expiry of the installed certificate")
    s.set_defaults(func=cmd_status)
    r = cmds.add_parser("renew", help="order a certificate now if renewal is due")
    r.add_argument("--force", action="store_true", help="order even if the certificate is not due")
    r.set_defaults(func=cmd_renew)


def cmd_status(args: argparse.Namespace) -> int:
    from courriel.acme.issue import current, renewal_due, wanted_names

    cfg = load_config(data_dir(args))
    info = current(cfg)
    print(f"certificate: {cfg.path(cfg.tls.cert)}")
    if info is None:
        print("  none installed (or unreadable)")
    else:
        print(f"  names:     {', '.join(info.names) or '(none)'}")
        print(f"  issuer:    {info.issuer}")
        print(f"  expires:   {info.not_after.isoformat()} ({info.days_left():.1f} days left)")
    print(f"acme: {'enabled' if cfg.acme.enabled else 'disabled'}, {cfg.acme.directory}")
    print(f"  wanted names: {', '.join(wanted_names(cfg))}")
    reason = renewal_due(cfg)
    print(f"  renewal: {'due: ' + reason if reason else 'not due'}")
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    cfg = load_config(data_dir(args))
    return run_async(_renew, cfg, bool(args.force))


async def _renew(cfg: Config, force: bool) -> int:
    from courriel.acme.client import AcmeError
    from courriel.acme.issue import obtain, renewal_due

    reason = renewal_due(cfg)
    if reason is None and not force:
        print("courriel: certificate not due for renewal (use --force to renew anyway)")
        return 0
    try:
        info = await obtain(cfg)
    except (AcmeError, httpx.HTTPError) as exc:
        raise CommandError(f"ACME order failed: {exc}") from None
    print(f"courriel: certificate for {', '.join(info.names)} installed, expires {info.not_after.isoformat()}")
    return 0
