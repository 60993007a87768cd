"""Composing in ``$EDITOR``: the draft as a header block, a blank line and the body.

    From: Alice <alice@example.org>
    To: bob@example.org
    Cc:
    Bcc:
    Reply-To:
    Subject: Re: lunch
    Attach: ~/menu.pdf          (one line per file to attach; may repeat)

    body text...

The file is written with mode 0600 in a private temporary directory and removed after.
An unchanged file aborts, as in mutt.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from .accounts import shell_words
from .compose import Draft, addresses, format_mailbox, load_attachments
from .errors import ClientError

_ADDRESS_FIELDS = {"from": "from_", "to": "to", "cc": "cc", "bcc": "bcc", "reply-to": "reply_to"}


def editor_command() -> list[str]:
    cmd = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return shell_words(cmd)


def template(draft: Draft) -> str:
    lines = [
        f"From: {', '.join(format_mailbox(b) for b in draft.from_)}",
        f"To: {', '.join(format_mailbox(b) for b in draft.to)}",
        f"Cc: {', '.join(format_mailbox(b) for b in draft.cc)}",
        f"Bcc: {', '.join(format_mailbox(b) for b in draft.bcc)}",
        f"Reply-To: {', '.join(format_mailbox(b) for b in draft.reply_to)}",
        f"Subject: {draft.subject}",
    ]
    return "\n".join(lines) + "\n\n" + draft.text


def parse_template(text: str, draft: Draft) -> tuple[Draft, list[str]]:
    """Apply an edited template to ``draft``: (the draft, files named by Attach: lines)."""
    head, sep, body = text.replace("\r\n", "\n").partition("\n\n")
    if not sep:
        head, body = text, ""
    fields: list[tuple[str, str]] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ClientError(f"the edited message has a header line without a colon: {line[:60]!r}")
        fields.append((name.strip().lower(), value.strip()))
    attach: list[str] = []
    values: dict[str, list[str]] = {}
    for name, value in fields:
        if name == "subject":
            draft.subject = value
        elif name == "attach":
            if value:
                attach.append(value)
        elif name in _ADDRESS_FIELDS:
            values.setdefault(name, []).append(value)
        else:
            raise ClientError(f"the edited message has an unknown header {name!r} "
                              "(known: From, To, Cc, Bcc, Reply-To, Subject, Attach)")  # fmt: skip
    for name, vals in values.items():
        setattr(draft, _ADDRESS_FIELDS[name], addresses(vals))
    if not draft.from_:
        raise ClientError("the edited message has no From address")
    draft.text = body
    return draft, attach


def edit(draft: Draft) -> Draft:
    """Open the draft in the user's editor and read it back; unchanged aborts."""
    text = template(draft)
    with tempfile.TemporaryDirectory(prefix="courriel-mail-") as tmp:
        path = Path(tmp) / "message.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            status = subprocess.call([*editor_command(), str(path)])
        except OSError as exc:
            raise ClientError(f"cannot run the editor: {exc}") from None
        if status != 0:
            raise ClientError(f"aborted: the editor exited with status {status}")
        try:
            edited = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientError(f"cannot read the edited message: {exc}") from None
    if edited == text:
        raise ClientError("aborted: the message was not changed")
    draft, attach = parse_template(edited, draft)
    draft.attachments += load_attachments(attach)
    return draft
