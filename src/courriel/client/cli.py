"""``courriel mail``: the argument parser and the one place errors become a line.

Every subcommand takes ``--config FILE`` and ``-a/--account NAME`` (before or after its
name). Messages are named by the UID that ``list`` shows, in ``--folder`` (INBOX).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .errors import ClientError

Handler = Callable[[argparse.Namespace], int]


def _common(defaults: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    d: Any = None if defaults else argparse.SUPPRESS
    p.add_argument("--config", metavar="FILE", default=d,
                   help="account file (default $COURRIEL_MAIL_CONFIG, else $XDG_CONFIG_HOME/courriel/accounts.toml)")  # fmt: skip
    p.add_argument("-a", "--account", metavar="NAME", default=d, help="account to use (default: the first)")
    return p


def _run(target: str) -> Handler:
    """A handler named "module:function" in this package, imported when it runs (so the
    rest of ``courriel`` does not load the network libraries)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        from .render import errors

        module, _, name = target.partition(":")
        handler: Handler = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        try:
            return handler(args)
        except ClientError as exc:
            errors.print(f"courriel mail: {exc}", markup=False)
            return 1
        except KeyboardInterrupt:
            errors.print("courriel mail: interrupted", markup=False)
            return 130
        except BrokenPipeError:
            return 1
        except OSError as exc:  # local files (a full disk, a directory not writable)
            where = f": {exc.filename}" if exc.filename else ""
            errors.print(f"courriel mail: {exc.strerror or exc}{where}", markup=False)
            return 1

    return run


def _compose_options(p: argparse.ArgumentParser, recipients_required: bool = False) -> None:
    p.add_argument("--to", action="append", default=[], metavar="ADDR", help="recipient (repeatable, or comma-separated)")
    p.add_argument("--cc", action="append", default=[], metavar="ADDR")
    p.add_argument("--bcc", action="append", default=[], metavar="ADDR")
    p.add_argument("--reply-to", action="append", default=[], metavar="ADDR")
    p.add_argument("--body", metavar="FILE", help="text body from FILE ('-' for stdin)")
    p.add_argument("--html", metavar="FILE", help="an HTML body from FILE (a text alternative is derived when --body is absent)")
    p.add_argument("--attach", nargs="+", action="extend", default=[], metavar="FILE", help="files to attach")
    p.add_argument("--charset", help="preferred charset for text (e.g. iso-8859-15); US-ASCII when it fits, UTF-8 when it does not")
    p.add_argument("-e", "--edit", action="store_true", help="compose in $EDITOR")
    p.add_argument("--draft", action="store_true", help="save to Drafts instead of sending")
    p.add_argument("--no-save", action="store_true", help="do not save a copy to Sent")


def register(sub: Any) -> None:
    common = _common(False)
    mail = sub.add_parser("mail", parents=[_common(True)], help="the mail client: send, fetch and read mail on any server")
    msub = mail.add_subparsers(dest="mail_command", metavar="COMMAND", required=True)

    def add(name: str, handler: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = msub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=_run(handler))
        return p

    acc = msub.add_parser("account", help="add, list and remove accounts")
    asub = acc.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    a = asub.add_parser("add", parents=[common], help="add or replace an account")
    a.add_argument("name")
    a.add_argument("--address", required=True, help='"Name <addr>" or addr')
    a.add_argument("--user", help="login name (default: the address)")
    for service in ("imap", "smtp", "pop3"):
        a.add_argument(f"--{service}", metavar="HOST[:PORT]", help=f"{service.upper()} server")
        a.add_argument(f"--{service}-tls", choices=("tls", "starttls", "none"),
                       help="implicit TLS, STARTTLS, or none (loopback tests only); default from the port")  # fmt: skip
    a.add_argument("--password-env", metavar="VAR", help="take the password from this environment variable")
    a.add_argument("--password-command", metavar="CMD", help="take the password from this command's first output line")
    a.add_argument("--ca-file", metavar="PEM", help="trust this CA or self-signed certificate")
    a.add_argument("--maildir", metavar="DIR", help="where fetch puts mail (default ~/Mail/NAME)")
    a.add_argument("--sent-folder", help="Sent folder name (default: found by SPECIAL-USE \\Sent)")
    a.add_argument("--drafts-folder", help="Drafts folder name (default: found by SPECIAL-USE \\Drafts)")
    a.add_argument("--charset", help="preferred charset for text parts")
    a.add_argument("--discover", action="store_true", help="find servers from the address's domain (RFC 6186 SRV, then usual names)")
    a.add_argument("--default", action="store_true", help="make it the default account")
    a.set_defaults(func=_run("commands:account_add"))
    lst = asub.add_parser("list", parents=[common], help="list accounts")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_run("commands:account_list"))
    rm = asub.add_parser("remove", parents=[common], help="remove an account")
    rm.add_argument("name")
    rm.set_defaults(func=_run("commands:account_remove"))

    p = add("send", "commands:send", "compose and send a message (SMTP submission), saving a copy to Sent")
    p.add_argument("-s", "--subject")
    _compose_options(p)
    p = add("reply", "commands:reply", "reply to a message")
    p.add_argument("uid", type=int)
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--all", action="store_true", help="reply to all recipients")
    _compose_options(p)
    p = add("forward", "commands:forward", "forward a message")
    p.add_argument("uid", type=int)
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--as-attachment", action="store_true", help="attach the original (message/rfc822) instead of quoting it")
    _compose_options(p)

    p = add("fetch", "commands:fetch", "download new mail into a local Maildir (POP3 or IMAP)")
    p.add_argument("--protocol", choices=("pop3", "imap"), help="default: POP3 when the account has a POP3 server")
    p.add_argument("--folder", default="INBOX", help="IMAP folder to download")
    p.add_argument("--maildir", metavar="DIR")
    p.add_argument("--delete", action="store_true", help="delete downloaded messages on the server (default: keep)")

    p = add("list", "mailcmds:list_", "list the messages of a folder, newest page first")
    p.add_argument("folder", nargs="?", default="INBOX")
    p.add_argument("--page", type=int, default=1, help="page number, 1 = newest")
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p = add("read", "mailcmds:read", "show a message: headers, text (or HTML as text), attachments")
    p.add_argument("uid", type=int)
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--html", action="store_true", help="show the HTML part (as text) even when there is a text part")
    p.add_argument("--raw", action="store_true", help="write the message exactly as stored")
    p.add_argument("--peek", action="store_true", help="do not mark it \\Seen")
    p.add_argument("--json", action="store_true")
    p = add("save-attachments", "mailcmds:save_attachments", "save a message's attachments to a directory")
    p.add_argument("uid", type=int)
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--dir", default=".", help="directory (created if missing)")
    p.add_argument("--index", type=int, action="append", default=[], help="only attachment number N (repeatable)")
    p = add("search", "mailcmds:search", "search a folder on the server (IMAP SEARCH)")
    p.add_argument("criteria", nargs="*", help="raw IMAP search keys, e.g. UNSEEN LARGER 10000")
    p.add_argument("--folder", default="INBOX")
    for key in ("from", "to", "cc", "subject", "body", "text"):
        p.add_argument(f"--{key}", action="append", default=[], metavar="TEXT")
    p.add_argument("--since", metavar="YYYY-MM-DD")
    p.add_argument("--before", metavar="YYYY-MM-DD")
    for key in ("unseen", "seen", "flagged", "answered"):
        p.add_argument(f"--{key}", action="store_true")
    p.add_argument("--json", action="store_true")
    for name, handler, text in (("move", "mailcmds:move", "move messages to another folder"),
                                ("copy", "mailcmds:copy", "copy messages to another folder")):  # fmt: skip
        p = add(name, handler, text)
        p.add_argument("uids", type=int, nargs="+", metavar="UID")
        p.add_argument("dest", metavar="FOLDER")
        p.add_argument("--folder", default="INBOX")
    for name, handler, text in (("flag", "mailcmds:flag", "set flags (default \\Flagged)"),
                                ("unflag", "mailcmds:unflag", "clear flags (default \\Flagged)")):  # fmt: skip
        p = add(name, handler, text)
        p.add_argument("uids", type=int, nargs="+", metavar="UID")
        p.add_argument("--folder", default="INBOX")
        p.add_argument("-f", "--flag", action="append", default=[], help="seen, answered, flagged, deleted, draft, forwarded or a keyword")
    p = add("delete", "mailcmds:delete", "delete messages (expunged; --trash moves them to Trash)")
    p.add_argument("uids", type=int, nargs="+", metavar="UID")
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--trash", action="store_true")

    p = add("folders", "mailcmds:folders", "list, create, rename, delete, subscribe or unsubscribe folders")
    p.add_argument("action", nargs="?", default="list",
                   choices=("list", "create", "rename", "delete", "subscribe", "unsubscribe"))  # fmt: skip
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--json", action="store_true")


def main(argv: list[str] | None = None) -> int:
    """``courriel mail ...`` without the rest of the courriel command line."""
    parser = argparse.ArgumentParser(prog="courriel")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["mail", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.func(args)
    return result
