"""``courriel trace --user ADDR``: a user's live protocol sessions, in colour, as they happen.

Connects to the running server's DATA/trace.sock (courriel.trace.service): while connected,
every session of that user (IMAP, POP3, submission, incoming SMTP to them, ...) is recorded
and streamed here; client lines, server lines and events each have their colour. Secrets
and message bodies arrive already redacted. ``--json`` prints the raw entries instead.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from typing import Any

from courriel.cli.main import CommandError, data_dir
from courriel.config import load_config

STYLES = {"c": "bold cyan", "s": "green", "event": "magenta"}
ARROWS = {"c": "C:", "s": "S:", "event": "**"}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "trace",
        help="stream a user's live protocol sessions (transcripts, redacted)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--user", required=True, metavar="ADDR", help="the user (address) to trace")
    p.add_argument("--json", action="store_true", help="print the raw JSON entries")
    p.add_argument("--count", type=int, default=0, metavar="N", help="stop after N entries (0: until Ctrl-C)")
    p.set_defaults(func=trace_command)


def format_entry(entry: dict[str, Any]) -> tuple[str, str]:
    """(prefix, text) of one entry: the time, the session and the direction."""
    stamp = time.strftime("%H:%M:%S", time.localtime(float(entry.get("t", 0))))
    session = str(entry.get("session", ""))
    short = session.rsplit("-", 1)[-1] if session else ""
    return f"{stamp} {entry.get('listener', '')}/{short} {ARROWS.get(entry.get('dir', ''), '??')}", str(entry["text"])


def trace_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    cfg = load_config(data_dir(args))
    path = cfg.data_dir / "trace.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        raise CommandError(f"cannot reach the server's trace socket {path} (is `courriel serve` running?): {exc}") from None
    stream = sock.makefile("rwb")
    stream.write(json.dumps({"user": args.user}).encode() + b"\n")
    stream.flush()
    answer = json.loads(stream.readline() or b'{"ok": false, "error": "no answer"}')
    if not answer.get("ok"):
        raise CommandError(f"trace refused: {answer.get('error', 'unknown error')}")
    console = Console(highlight=False, soft_wrap=True)
    Console(stderr=True).print(Text(f"tracing {args.user}: waiting for sessions (Ctrl-C stops)", style="dim"))
    seen = 0
    try:
        for raw in stream:
            entry = json.loads(raw)
            if args.json:
                print(json.dumps(entry, ensure_ascii=False), flush=True)
            else:
                prefix, text = format_entry(entry)
                line = Text(prefix + " ", style="dim")
                line.append(text, style=STYLES.get(entry.get("dir", ""), ""))
                console.print(line)
            seen += 1
            if args.count and seen >= args.count:
                break
    finally:
        sock.close()
    return 0
