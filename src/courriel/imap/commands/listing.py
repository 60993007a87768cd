"""LIST and LSUB (RFC 9051 §6.3.9, RFC 3501 §6.3.9), with LIST-EXTENDED selection and return
options (RFC 5258), CHILDREN (RFC 3348), SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819)."""

from __future__ import annotations

import re

from courriel.imap.commands.mailboxes import status_line
from courriel.imap.protocol.types import Command, ListCmd
from courriel.imap.session import Session
from courriel.store.api import DELIMITER, INBOX, Mailbox

_DELIM = b'"/"'


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """"*" matches anything, "%" anything but the delimiter; INBOX case-insensitively."""
    head = pattern[:5]
    if head.upper() == INBOX and (len(pattern) == 5 or pattern[5] in "/%*"):
        pattern = INBOX + pattern[5:]
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _canonical(reference: str, pattern: str) -> str:
    if pattern.startswith(DELIMITER) and reference.endswith(DELIMITER):
        return reference + pattern[1:]
    return reference + pattern


async def list_(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, ListCmd)
    if args.lsub:
        return await _lsub(s, args)
    if len(args.patterns) == 1 and args.patterns[0] == "" and not args.extended:
        # RFC 9051 §6.3.9: the hierarchy delimiter and root name
        s.untagged(b'LIST (\\Noselect) "/" ""')
        return "LIST completed"
    mailboxes = await s.store.list_mailboxes(s.user_id)
    by_name = {m.name: m for m in mailboxes}
    subscribed = set(await s.store.list_subscriptions(s.user_id))
    regexes = [pattern_regex(_canonical(args.reference, p)) for p in args.patterns if p != ""]
    sel_subscribed = "SUBSCRIBED" in args.selection
    sel_special = "SPECIAL-USE" in args.selection
    recursive = "RECURSIVEMATCH" in args.selection
    ret_subscribed = "SUBSCRIBED" in args.returns or sel_subscribed
    ret_special = "SPECIAL-USE" in args.returns or not args.extended or sel_special
    names = sorted(set(by_name) | (subscribed if sel_subscribed else set()), key=_order)
    for name in names:
        matched = any(r.match(name) for r in regexes)
        mb = by_name.get(name)
        attrs: list[str] = []
        extra = b""
        if sel_subscribed and name not in subscribed:
            # RFC 5258 §3.5: with RECURSIVEMATCH, a parent of subscribed mailboxes shows up
            # with CHILDINFO even when not subscribed itself.
            if not (recursive and matched and any(x.startswith(name + DELIMITER) for x in subscribed)):
                continue
            extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
        elif sel_subscribed and recursive and any(x.startswith(name + DELIMITER) for x in subscribed):
            extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
        if not matched:
            continue
        if sel_special and (mb is None or mb.special_use is None):
            continue
        if mb is None:
            attrs.append("\\NonExistent")
        else:
            if mb.noselect:
                attrs.append("\\Noselect")
            has_children = any(n.startswith(name + DELIMITER) for n in by_name)
            attrs.append("\\HasChildren" if has_children else "\\HasNoChildren")
            if ret_special and mb.special_use:
                attrs.append(mb.special_use)
        if ret_subscribed and name in subscribed:
            attrs.append("\\Subscribed")
        s.untagged(b"LIST (" + " ".join(attrs).encode() + b") " + _DELIM + b" " + s.mailbox_name(name) + extra)
        if args.status_items and mb is not None and not mb.noselect:
            s.untagged(await status_line(s, mb, args.status_items))  # RFC 5819
    return "LIST completed"


def _order(name: str) -> tuple[int, str]:
    return (0 if name == INBOX or name.startswith(INBOX + DELIMITER) else 1, name)


async def _lsub(s: Session, args: ListCmd) -> str:
    regex = pattern_regex(_canonical(args.reference, args.patterns[0]))
    if args.patterns[0] == "":
        s.untagged(b'LSUB (\\Noselect) "/" ""')
        return "LSUB completed"
    mailboxes: dict[str, Mailbox] = {m.name: m for m in await s.store.list_mailboxes(s.user_id)}
    subscribed = sorted(await s.store.list_subscriptions(s.user_id), key=_order)
    shown: set[str] = set()
    for name in subscribed:
        if regex.match(name):
            mb = mailboxes.get(name)
            attrs = b"" if mb is not None and not mb.noselect else b"\\Noselect"
            s.untagged(b"LSUB (" + attrs + b") " + _DELIM + b" " + s.mailbox_name(name))
            shown.add(name)
    # RFC 3501 §6.3.9: "%" may match a parent of a subscribed mailbox: shown \Noselect.
    for name in subscribed:
        parts = name.split(DELIMITER)
        for i in range(1, len(parts)):
            parent = DELIMITER.join(parts[:i])
            if parent not in shown and parent not in subscribed and regex.match(parent):
                shown.add(parent)
                s.untagged(b"LSUB (\\Noselect) " + _DELIM + b" " + s.mailbox_name(parent))
    return "LSUB completed"
