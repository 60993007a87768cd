"""The one value every reader yields and every writer takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# IMAP system flags (RFC 9051 §2.3.2). \Recent is session state, never stored here.
SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
SYSTEM_FLAGS = frozenset({SEEN, ANSWERED, FLAGGED, DELETED, DRAFT})

# A keyword, not a system flag (RFC 9051 §2.3.2, RFC 5550 §5.9); Maildir stores it as "P".
FORWARDED = "$Forwarded"


@dataclass(frozen=True, slots=True)
class MailItem:
    """One message moving in or out of a mailbox file.

    data: the message with CRLF line endings, as SMTP delivers it and the store keeps it.
    envelope_from: the envelope sender (mbox From_ line, Maildir Return-Path:); "" is the
        null sender <>, None is unknown.
    internal_date: the delivery time (mbox From_ date, Maildir file mtime), timezone-aware UTC.
    flags: IMAP system flags, a subset of SYSTEM_FLAGS (writers ignore anything else).
    keywords: IMAP keywords such as $Forwarded or $Junk.
    mbox_from_line: the original From_ line (no line ending), kept only when it cannot be
        rebuilt from (envelope_from, internal_date); write_mbox uses it while it still
        agrees with those two fields, so editing them with dataclasses.replace() wins.
    """

    data: bytes
    envelope_from: str | None = None
    internal_date: datetime | None = None
    flags: frozenset[str] = field(default_factory=frozenset)
    keywords: frozenset[str] = field(default_factory=frozenset)
    mbox_from_line: bytes | None = None
