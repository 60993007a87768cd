"""mbox files, mboxrd flavour, read and written as streams.

Format (qmail mbox(5); https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml):
  * a message is a From_ line, the message lines, then one empty line;
  * a From_ line is a line starting "From " at the start of the file or right after an
    empty line; that empty line belongs to the separator, not to the message before it;
  * mboxrd quoting: on write a line matching ^>*From  gains one ">", on read a line
    matching ^>+From  loses one. Reading mboxo files with these rules and writing them
    back gives the same bytes (">From " in an mboxo body was already ambiguous).
  * Content-Length: (mboxcl/mboxcl2) is ignored; only From_ lines separate messages.

Invariants:
  * write_mbox(read_mbox(F)) == F, byte for byte, for every F that starts with "From ",
    uses LF line endings, ends each message with one empty line, and has no unquoted
    "From " line inside a message (one not after an empty line: we would quote it).
    From_ lines that are not in canonical form are kept in MailItem.mbox_from_line.
  * read_mbox(write_mbox(items)) gives back data, envelope_from and internal_date (to
    the second) of each item whose data has clean CRLF endings and ends with CRLF.
  * A message whose data does not end with a line ending gets one in the file (mboxrd
    has no way to say otherwise), so it reads back with a final CRLF. Likewise a last
    message not followed by the empty line reads fine and is written with it.
  * Memory: one message plus one read chunk; time: linear in the file size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from .fromline import format_from_line, parse_from_line
from .headers import status_flags, x_keywords
from .item import MailItem
from .lines import to_crlf, to_lf

Source = str | os.PathLike[str] | BinaryIO

CHUNK_SIZE = 1 << 20
# End of a message: the LF ending its last line, the empty line, then "From ".
_SEPARATOR = re.compile(rb"\n\r?\nFrom ")
_SEPARATORS = (b"\n\nFrom ", b"\n\r\nFrom ")  # the same, for bytes.count()
_SEPARATOR_MAX = 8  # longest separator; a match across a chunk edge starts within 7 bytes
# Quoting patterns anchor on the LF before a line rather than on ^ with re.M: a
# literal first character lets re skip ahead, about 7 times faster (see bench.py).
_UNQUOTE = re.compile(rb"\n>(>*From )")
_UNQUOTE_FIRST = re.compile(rb">+From ")
_QUOTE = re.compile(rb"\n(>*From )")
_QUOTE_FIRST = re.compile(rb">*From ")


# --- pure functions: one message ------------------------------------------------------


def decode_message(from_line: bytes, body: bytes) -> MailItem:
    """A MailItem from a From_ line (no line ending) and the message as stored in the file."""
    sender, date = parse_from_line(from_line)
    exact = date is not None and _canonical(sender, date) == from_line
    data = to_crlf(unquote(body))
    return MailItem(
        data=data,
        envelope_from=sender,
        internal_date=date,
        flags=status_flags(data),
        keywords=x_keywords(data),
        mbox_from_line=None if exact else from_line,
    )


def encode_message(item: MailItem, now: datetime | None = None) -> bytes:
    """The bytes of one message in an mbox file: From_ line, quoted body, empty line.

    now is the date written when the item has none (default: the current time).
    """
    body = quote(to_lf(item.data))
    if body and not body.endswith(b"\n"):
        body += b"\n"  # the separator needs a line start; see the module docstring
    return b"".join((_from_line_for(item, now), b"\n", body, b"\n"))


def quote(body: bytes) -> bytes:
    """mboxrd quoting of a message in file form: ">" before each line matching ^>*From ."""
    if b"From " not in body:
        return body
    body = _QUOTE.sub(rb"\n>\1", body)
    return b">" + body if _QUOTE_FIRST.match(body) else body


def unquote(body: bytes) -> bytes:
    """The inverse of quote(): one ">" less on each line matching ^>+From ."""
    if b">From " not in body:
        return body
    body = _UNQUOTE.sub(rb"\n\1", body)
    return body[1:] if _UNQUOTE_FIRST.match(body) else body


def _canonical(sender: str | None, date: datetime) -> bytes | None:
    try:
        return format_from_line(sender, date)
    except ValueError:
        return None


def _from_line_for(item: MailItem, now: datetime | None) -> bytes:
    raw = item.mbox_from_line
    date = item.internal_date
    if raw is not None:
        if not raw.startswith(b"From ") or b"\n" in raw:
            raise ValueError(f"mbox_from_line is not a single From_ line: {raw[:80]!r}")
        sender, raw_date = parse_from_line(raw)
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=UTC)
        if (sender, raw_date) == (item.envelope_from, date):
            return raw
    return format_from_line(item.envelope_from, date or now or datetime.now(UTC))


# --- streaming --------------------------------------------------------------------------


def split_mbox(f: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[bytes, bytes]]:
    """Yield (From_ line without line ending, message as in the file) for each message.

    Raises ValueError if a non-empty file does not start with "From ".
    """
    buf, eof = _read_head(f, chunk_size)
    if not buf:
        return
    if not buf.startswith(b"From "):
        raise ValueError(f"not an mbox file: starts with {buf[:20]!r}, not 'From '")
    start = 0  # where the current From_ line starts in buf
    while True:
        nl = buf.find(b"\n", start)
        while nl < 0 and not eof:
            scanned = len(buf) - start
            buf, eof = _more(f, buf, start, chunk_size)
            start = 0
            nl = buf.find(b"\n", scanned)
        if nl < 0:  # a From_ line that ends the file
            yield _chomp_cr(buf[start:]), b""
            return
        search = nl  # the LF ending the From_ line can start the separator (empty message)
        m = _SEPARATOR.search(buf, search)
        while m is None and not eof:
            search = max(search, len(buf) - _SEPARATOR_MAX + 1) - start
            nl -= start
            buf, eof = _more(f, buf, start, chunk_size)
            start = 0
            m = _SEPARATOR.search(buf, search)
        from_line = _chomp_cr(buf[start:nl])
        if m is None:
            yield from_line, _last_body(buf[nl:])
            return
        yield from_line, buf[nl + 1 : m.start() + 1]
        start = m.end() - 5


def read_mbox(source: Source, *, chunk_size: int = CHUNK_SIZE) -> Iterator[MailItem]:
    """Yield each message of an mbox file (a path or a binary file object), in file order.

    A path is opened on the first next(); errors (missing file, not an mbox) come then.
    """
    if isinstance(source, str | os.PathLike):
        with open(source, "rb", buffering=0) as f:
            for from_line, body in split_mbox(f, chunk_size):
                yield decode_message(from_line, body)
    else:
        for from_line, body in split_mbox(source, chunk_size):
            yield decode_message(from_line, body)


def write_mbox(target: Source, items: Iterable[MailItem], *, fsync: bool = True) -> int:
    """Append items to an mbox file; return how many were written.

    A path is created (mode 0600) if missing; if the file does not end with the empty
    separator line, it is completed first. It is flushed and, with fsync, synced at the
    end. A file object is written at its current position, which must be the start or
    the end of a well-formed mbox. Each message is written whole or not at all.
    No locking (dotlock/fcntl): do not write to a spool an MDA is delivering to.
    """
    if not isinstance(target, str | os.PathLike):
        return _write_all(target, items)
    prefix = _completion(target)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "ab", buffering=CHUNK_SIZE) as f:
        f.write(prefix)
        count = _write_all(f, items)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    return count


def count_mbox(source: Source, *, chunk_size: int = CHUNK_SIZE) -> int:
    """How many messages read_mbox will yield, counted at bytes.count() speed."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb", buffering=0) as f:
            return _count(f, chunk_size)
    return _count(source, chunk_size)


# --- helpers ----------------------------------------------------------------------------


def _read_head(f: BinaryIO, size: int) -> tuple[bytes, bool]:
    """The first chunk, at least 5 bytes unless the file is shorter; and whether at EOF."""
    buf = f.read(size)
    eof = not buf
    while not eof and len(buf) < 5:
        chunk = f.read(size)
        eof = not chunk
        buf += chunk
    return buf, eof


def _more(f: BinaryIO, buf: bytes, start: int, size: int) -> tuple[bytes, bool]:
    """buf[start:] plus more of the file, and whether at EOF. Reads grow with the
    message so that a message far larger than a chunk is still read in linear time."""
    chunk = f.read(max(size, len(buf) - start))
    return buf[start:] + chunk, not chunk


def _chomp_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _last_body(tail: bytes) -> bytes:
    """The last message: tail starts at the LF ending its From_ line; drop the final
    empty line if there is one (it is the separator), keep the rest as is."""
    if tail.endswith(b"\n\n"):
        tail = tail[:-1]
    elif tail.endswith(b"\n\r\n"):
        tail = tail[:-2]
    return tail[1:]


def _completion(path: str | os.PathLike[str]) -> bytes:
    """What an existing mbox needs appended before a new From_ line can follow it."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 3))
            tail = f.read()
    except FileNotFoundError:
        return b""
    if not tail or tail.endswith((b"\n\n", b"\n\r\n")):
        return b""
    return b"\n" if tail.endswith(b"\n") else b"\n\n"


def _write_all(f: BinaryIO, items: Iterable[MailItem]) -> int:
    count = 0
    for item in items:
        f.write(encode_message(item))
        count += 1
    return count


def _count(f: BinaryIO, chunk_size: int) -> int:
    buf, eof = _read_head(f, chunk_size)
    if not buf:
        return 0
    if not buf.startswith(b"From "):
        raise ValueError(f"not an mbox file: starts with {buf[:20]!r}, not 'From '")
    count = 1
    tail = b""
    while buf:
        # Matches wholly inside tail were counted with the previous chunk.
        window = tail + buf
        count += sum(window.count(s) - tail.count(s) for s in _SEPARATORS)
        tail = window[-(_SEPARATOR_MAX - 1) :]
        buf = b"" if eof else f.read(chunk_size)
    return count
