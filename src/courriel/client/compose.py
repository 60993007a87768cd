"""New messages, replies (RFC 5322 §3.6.4) and forwards, built with ``compose_message``.

Bcc recipients get the message over SMTP but never see a Bcc header; the copy saved to
Sent or Drafts keeps it. Replies carry In-Reply-To and References (RFC 5322 §3.6.4);
a reply to all leaves out the sender's own address and duplicates.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from courriel.mime import Attachment, compose_message, parse_addresses
from courriel.mime.encode import encode_addr_spec

from .accounts import Account
from .errors import ClientError
from .message import MessageView

Mailbox = tuple[str, str]  # (display name, address)


@dataclass(slots=True)
class Draft:
    from_: list[Mailbox]
    to: list[Mailbox] = field(default_factory=list)
    cc: list[Mailbox] = field(default_factory=list)
    bcc: list[Mailbox] = field(default_factory=list)
    reply_to: list[Mailbox] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    charset: str = "utf-8"

    def recipients(self) -> list[str]:
        """Envelope recipients (RFC 5321 RCPT TO): To, Cc and Bcc, each once, domains
        in IDNA A-labels."""
        seen: set[str] = set()
        out: list[str] = []
        for _name, addr in (*self.to, *self.cc, *self.bcc):
            wire = envelope_address(addr)
            if wire.casefold() not in seen:
                seen.add(wire.casefold())
                out.append(wire)
        return out

    def build(self, *, keep_bcc: bool, message_id: str | None = None, date: datetime | None = None) -> bytes:
        try:
            return compose_message(
                from_=self.from_, to=self.to, cc=self.cc, bcc=self.bcc, reply_to=self.reply_to,
                subject=self.subject, text=self.text, html=self.html,
                attachments=self.attachments, in_reply_to=self.in_reply_to,
                references=self.references, message_id=message_id, date=date,
                charset=self.charset, keep_bcc=keep_bcc,
            )  # fmt: skip
        except ValueError as exc:
            raise ClientError(f"cannot compose the message: {exc}") from None


def addresses(values: Iterable[str]) -> list[Mailbox]:
    """Addresses given on the command line or in an editor: each value may hold several,
    comma-separated, as ``addr`` or ``Name <addr>``."""
    out: list[Mailbox] = []
    for value in values:
        if not value.strip():
            continue
        found = parse_addresses(value)
        if not found:
            raise ClientError(f"not an e-mail address: {value!r}")
        for name, addr in found:
            local, at, domain = addr.rpartition("@")
            if not at or not local or not domain or " " in addr:
                raise ClientError(f"not an e-mail address: {addr!r}")
            out.append((name, addr))
    return out


def envelope_address(addr: str) -> str:
    """``addr`` as SMTP carries it without SMTPUTF8 (RFC 5321 §4.1.2; RFC 5890 A-labels)."""
    try:
        return encode_addr_spec(addr)
    except ValueError as exc:
        raise ClientError(f"cannot send to or from {addr!r}: {exc}") from None


def format_mailbox(box: Mailbox) -> str:
    """``Name <addr>`` for an editor template or a display (Unicode, quoted when needed)."""
    name, addr = box
    if not name:
        return addr
    if any(c in name for c in '",<>@:;()[]\\.'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def load_attachments(paths: Sequence[str]) -> list[Attachment]:
    out: list[Attachment] = []
    for p in paths:
        path = Path(p).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ClientError(f"cannot attach {path}: {exc.strerror}") from None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") and not data.isascii():
            # RFC 2046 §4.1.2: text needs its charset named; UTF-8 when it is, else octets.
            try:
                data.decode("utf-8")
                ctype += "; charset=utf-8"
            except UnicodeDecodeError:
                ctype = "application/octet-stream"
        out.append(Attachment(filename=path.name, data=data, content_type=ctype))
    return out


def _prefixed(subject: str, prefix: str) -> str:
    stripped = subject.strip()
    low = stripped.casefold()
    if low.startswith(prefix.casefold()):
        return stripped
    return f"{prefix} {stripped}".strip()


def quote(text: str) -> str:
    return "".join(f"> {line}\n" if line else ">\n" for line in text.splitlines())


def reply_draft(account: Account, original: MessageView, reply_all: bool) -> Draft:
    msg = original.parsed
    me = account.email.casefold()
    to = list(msg.reply_to or msg.from_)
    cc: list[Mailbox] = []
    if reply_all:
        seen = {a.casefold() for _n, a in to} | {me}
        for name, addr in (*msg.to, *msg.cc):
            if addr.casefold() not in seen:
                seen.add(addr.casefold())
                cc.append((name, addr))
        if not to:  # replying to one's own message: to its recipients
            to, cc = cc, []
    who = msg.from_[0][0] or msg.from_[0][1] if msg.from_ else "someone"
    when = msg.date.strftime("%a, %d %b %Y %H:%M") if msg.date else "an unknown date"
    refs = [*msg.references]
    if msg.message_id and msg.message_id not in refs:
        refs.append(msg.message_id)
    return Draft(
        from_=addresses([account.address]), to=to, cc=cc,
        subject=_prefixed(msg.subject or "", "Re:"),
        text=f"\n\nOn {when}, {who} wrote:\n{quote(original.text)}",
        in_reply_to=msg.message_id, references=refs[-20:], charset=account.charset,
    )  # fmt: skip


def forward_draft(account: Account, original: MessageView, as_attachment: bool) -> Draft:
    msg = original.parsed
    draft = Draft(from_=addresses([account.address]), subject=_prefixed(msg.subject or "", "Fwd:"),
                  charset=account.charset)  # fmt: skip
    if as_attachment:
        # RFC 2046 §5.2.1: the original, unchanged, as a message/rfc822 part.
        name = (msg.subject or "forwarded message").replace("/", "_")[:80] + ".eml"
        draft.attachments.append(Attachment(filename=name, data=original.raw, content_type="message/rfc822"))
        return draft
    lines = ["", "", "-------- Forwarded Message --------"]
    for label, value in (
        ("Subject", msg.subject or ""),
        ("Date", msg.date.strftime("%a, %d %b %Y %H:%M:%S %z") if msg.date else ""),
        ("From", ", ".join(format_mailbox(b) for b in msg.from_)),
        ("To", ", ".join(format_mailbox(b) for b in msg.to)),
        ("Cc", ", ".join(format_mailbox(b) for b in msg.cc)),
    ):
        if value:
            lines.append(f"{label}: {value}")
    draft.text = "\n".join(lines) + "\n\n" + original.text
    for att in original.attachments:
        draft.attachments.append(Attachment(filename=att.filename, data=original.attachment_data(att),
                                            content_type=att.mime_type))  # fmt: skip
    return draft
