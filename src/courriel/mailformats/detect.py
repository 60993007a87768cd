"""Which mailbox format a path holds, and how many messages, for the import CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from .maildir import count_maildir, is_maildir
from .mbox import count_mbox

Format = Literal["mbox", "maildir"]


def detect_format(path: str | os.PathLike[str]) -> Format:
    """The format of path, or ValueError if it is neither.

    A Maildir is a directory with cur/ and new/ (tmp/ is optional: writers create it);
    an mbox is a file that starts with "From " or is empty (an empty mailbox).
    """
    p = Path(path)
    if p.is_dir():
        if is_maildir(p):
            return "maildir"
        raise ValueError(f"{p} is a directory but not a Maildir (no cur/ and new/)")
    with open(p, "rb") as f:
        head = f.read(5)
    if head in (b"", b"From "):
        return "mbox"
    raise ValueError(f"{p} is neither a Maildir nor an mbox file (starts with {head!r})")


def count_messages(path: str | os.PathLike[str]) -> int:
    """Message count for a progress bar: From_ lines of an mbox, files of a Maildir."""
    if detect_format(path) == "maildir":
        return count_maildir(path)
    return count_mbox(path)
