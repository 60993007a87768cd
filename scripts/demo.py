"""``make run``: create a demo data directory when absent, then run every service on loopback.

The demo has the domain example.test and the users alice@example.test and bob@example.test,
with generated passwords printed once (they are kept nowhere in clear).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from courriel.auth.passwords import generate_password
from courriel.cli.main import main as courriel
from courriel.config import CONFIG_FILE, load_config

DOMAIN = "example.test"
USERS = ("alice", "bob")


def _add_user(data: Path, address: str, password: str) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, password.encode() + b"\n")
    os.close(write_fd)
    saved = sys.stdin
    sys.stdin = os.fdopen(read_fd)
    try:
        if courriel(["-d", str(data), "user", "add", address, "--password-stdin"]) != 0:
            raise SystemExit(f"could not add {address}")
    finally:
        sys.stdin.close()
        sys.stdin = saved


def setup(data: Path) -> dict[str, str]:
    if courriel(["init", str(data), "--domain", DOMAIN]) != 0:
        raise SystemExit("init failed")
    accounts = {}
    for name in USERS:
        address = f"{name}@{DOMAIN}"
        accounts[address] = generate_password(16)
        _add_user(data, address, accounts[address])
    return accounts


def how_to_connect(data: Path, accounts: dict[str, str]) -> str:
    cfg = load_config(data)
    lines = ["", "courriel demo", "============="]
    if accounts:
        lines.append("Accounts (the passwords are shown this once):")
        lines += [f"  {addr}  password: {pw}" for addr, pw in accounts.items()]
    else:
        lines.append(f"Accounts: see 'courriel -d {data} user list' (passwords were printed at creation;")
        lines.append(f"  reset one with 'courriel -d {data} user passwd ADDRESS').")
    lines.append("Listeners (configured in %s):" % (data / CONFIG_FILE))
    for name, section in cfg.listeners().items():
        for host, port in section.addresses():
            lines.append(f"  {name:<12} {host}:{port}")
    submissions = cfg.submissions.addresses()
    imaps = cfg.imaps.addresses()
    if submissions and imaps:
        cert = cfg.path(cfg.tls.cert)
        lines += [
            "Try it with the bundled client (the server's certificate is self-signed):",
            f"  .venv/bin/courriel mail account add alice --address alice@{DOMAIN} \\",
            f"      --imap {imaps[0][0]}:{imaps[0][1]} --imap-tls tls"
            f" --smtp {submissions[0][0]}:{submissions[0][1]} --smtp-tls tls --ca-file {cert}",
            f"  .venv/bin/courriel mail send --to bob@{DOMAIN} --subject hello < /etc/hostname",
            "  .venv/bin/courriel mail list",
            "or point any mail client (Thunderbird, mutt...) at these ports.",
        ]
    http = cfg.http.addresses()
    if http:
        scheme = "https" if cfg.http.tls else "http"
        lines.append(f"Webmail: {scheme}://{http[0][0]}:{http[0][1]}/ (log in as one of the accounts above)")
        lines.append(f"JMAP: {scheme}://{http[0][0]}:{http[0][1]}/.well-known/jmap (HTTP Basic, or a bearer token from 'token add')")
    lines += [
        f"Administration: .venv/bin/courriel -d {data} --help",
        "Stop with Ctrl-C.",
        "",
    ]
    return "\n".join(lines)


def run(data: Path) -> int:
    accounts: dict[str, str] = {}
    if not (data / CONFIG_FILE).exists():
        accounts = setup(data)
    print(how_to_connect(data, accounts), flush=True)
    return courriel(["-d", str(data), "serve"])


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1] if len(sys.argv) > 1 else "courriel-data")))
