"""Reading and writing mbox files and Maildir folders, streaming and byte-exact.

The store keeps messages as bytes with CRLF line endings; mbox and Maildir files keep LF.
Readers yield MailItem values one at a time (a multi-GB mbox never sits in memory),
writers take any iterable of them. Nothing here touches the store.

Invariants (details in mbox.py and maildir.py):
  * write_mbox(read_mbox(F)) reproduces F byte for byte for an mbox in the usual form;
  * mbox → Maildir → mbox keeps each message's bytes, flags and date;
  * readers never change data: Status:/X-Status: (mbox) become flags but stay in data.
"""

from .detect import Format, count_messages, detect_format
from .headers import set_status_headers, with_status_headers
from .item import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    FORWARDED,
    SEEN,
    SYSTEM_FLAGS,
    MailItem,
)
from .maildir import MaildirWriter, count_maildir, read_maildir
from .mbox import count_mbox, read_mbox, write_mbox

__all__ = [
    "ANSWERED",
    "DELETED",
    "DRAFT",
    "FLAGGED",
    "FORWARDED",
    "SEEN",
    "SYSTEM_FLAGS",
    "Format",
    "MailItem",
    "MaildirWriter",
    "count_maildir",
    "count_mbox",
    "count_messages",
    "detect_format",
    "read_maildir",
    "read_mbox",
    "set_status_headers",
    "with_status_headers",
    "write_mbox",
]
