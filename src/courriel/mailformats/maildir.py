"""Maildir folders (https://cr.yp.to/proto/maildir.html) with Dovecot's flag conventions.

* A message is one file, LF line endings, in new/ (not yet seen by a mail reader, no
  info) or cur/ (name ends with the info ":2," and flag letters in ASCII order).
* Unique names: "<seconds>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<size with CRLF>"
  (the Dovecot form; S= and W= let Dovecot skip a stat and a count).
* Delivery: write tmp/<name>, fsync, link() into new/ or cur/ (rename() where the file
  system has no hard links), unlink tmp/<name>. The directories are fsynced at close().
* Info letters (Dovecot, mutt): D \\Draft, F \\Flagged, P $Forwarded (passed),
  R \\Answered (replied), S \\Seen, T \\Deleted (trashed); a..z are keywords numbered
  0..25 in the folder's dovecot-keywords file ("<n> <name>" per line).
* internal_date is the file's mtime (Dovecot's received date); the writer sets it.
* Order: by the delivery time in the name (seconds, then microseconds), then by name.
  The writer makes its names strictly increasing, so files read back in write order.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from .headers import is_keyword, return_path
from .item import ANSWERED, DELETED, DRAFT, FLAGGED, FORWARDED, SEEN, MailItem
from .lines import crlf_size, to_crlf, to_lf

PathArg = str | os.PathLike[str]

KEYWORDS_FILE = "dovecot-keywords"
MAX_KEYWORDS = 26  # letters a..z
_FLAG_LETTERS = {"D": DRAFT, "F": FLAGGED, "R": ANSWERED, "S": SEEN, "T": DELETED}
_LETTER_FOR_FLAG = {flag: letter for letter, flag in _FLAG_LETTERS.items()}
_NAME_TIME = re.compile(r"(\d+)(?:\.[^.]*?M(\d+))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- pure functions: names, info, dovecot-keywords ---------------------------------------


def parse_info(
    name: str, keyword_names: Mapping[str, str]
) -> tuple[frozenset[str], frozenset[str]]:
    """(flags, keywords) from a file name's ":2,<letters>" info.

    keyword_names maps a..z to keyword names; unknown letters are ignored.
    """
    _, sep, info = name.rpartition(":")
    if not sep or not info.startswith("2,"):
        return frozenset(), frozenset()
    letters = info[2:]
    flags = frozenset(_FLAG_LETTERS[c] for c in letters if c in _FLAG_LETTERS)
    keywords = {keyword_names[c] for c in letters if c in keyword_names}
    if "P" in letters:
        keywords.add(FORWARDED)
    return flags, frozenset(keywords)


def info_letters(flags: frozenset[str], keyword_letters: Mapping[str, str]) -> str:
    """Info letters, ASCII order, for flags and the keywords' letters (keyword → a..z)."""
    letters = {_LETTER_FOR_FLAG[f] for f in flags if f in _LETTER_FOR_FLAG}
    letters.update(keyword_letters.values())
    return "".join(sorted(letters))


def delivery_key(name: str) -> tuple[int, int, str] | None:
    """(seconds, microseconds, name) from a unique name, or None if it has no time."""
    m = _NAME_TIME.match(name)
    if m is None:
        return None
    return int(m[1]), int(m[2] or 0), name


def parse_dovecot_keywords(text: bytes) -> dict[str, str]:
    """letter → keyword from a dovecot-keywords file; malformed lines are skipped."""
    names: dict[str, str] = {}
    for line in text.decode("utf-8", "replace").splitlines():
        index, _, name = line.partition(" ")
        if index.isdigit() and int(index) < MAX_KEYWORDS and is_keyword(name):
            names[chr(ord("a") + int(index))] = name
    return names


def format_dovecot_keywords(names: Mapping[str, str]) -> bytes:
    """The dovecot-keywords file for letter → keyword."""
    lines = (f"{ord(letter) - ord('a')} {names[letter]}\n" for letter in sorted(names))
    return "".join(lines).encode("utf-8")


def _hostname() -> str:
    # maildir spec: "/" and ":" in the host name are written as \057 and \072.
    return socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


# --- reading ------------------------------------------------------------------------------


def is_maildir(path: PathArg) -> bool:
    root = Path(path)
    return (root / "cur").is_dir() and (root / "new").is_dir()


def read_dovecot_keywords(path: PathArg) -> dict[str, str]:
    try:
        return parse_dovecot_keywords((Path(path) / KEYWORDS_FILE).read_bytes())
    except FileNotFoundError:
        return {}


def list_messages(path: PathArg) -> list[tuple[str, str]]:
    """(subdir, name) of every message file in new/ and cur/, in delivery order."""
    root = Path(path)
    if not is_maildir(root):
        raise ValueError(f"not a Maildir (needs cur/ and new/): {root}")
    keyed: list[tuple[tuple[int, int, str], str]] = []
    for sub in ("new", "cur"):
        with os.scandir(root / sub) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                key = delivery_key(entry.name)
                if key is None:
                    key = (int(entry.stat().st_mtime), 0, entry.name)
                keyed.append((key, sub))
    keyed.sort()
    return [(sub, key[2]) for key, sub in keyed]


def count_maildir(path: PathArg) -> int:
    return len(list_messages(path))


def read_maildir(path: PathArg) -> Iterator[MailItem]:
    """Yield each message of a Maildir folder (new/ and cur/), in delivery order.

    envelope_from is the Return-Path: address; a file renamed by another program while
    we read (flags changed) is followed into cur/; a deleted one is skipped.
    """
    root = Path(path)
    keyword_names = read_dovecot_keywords(root)
    for sub, name in list_messages(root):
        found = _read_file(root, sub, name)
        if found is None:
            continue
        name, raw, mtime_ns = found
        flags, keywords = parse_info(name, keyword_names)
        data = to_crlf(raw)
        date = _EPOCH + timedelta(microseconds=mtime_ns // 1000)
        yield MailItem(data, return_path(data), date, flags, keywords)


def _read_file(root: Path, sub: str, name: str) -> tuple[str, bytes, int] | None:
    """(name, content, mtime in ns) of a listed file, following it if it moved."""
    try:
        with open(root / sub / name, "rb") as f:
            return name, f.read(), os.fstat(f.fileno()).st_mtime_ns
    except FileNotFoundError:
        pass
    # Another reader moved it (new/ → cur/) or changed its flags: same unique part.
    base = name.partition(":")[0]
    for moved in os.listdir(root / "cur"):
        if moved.partition(":")[0] == base:
            try:
                with open(root / "cur" / moved, "rb") as f:
                    return moved, f.read(), os.fstat(f.fileno()).st_mtime_ns
            except FileNotFoundError:
                return None
    return None


def _to_ns(date: datetime) -> int:
    """Nanoseconds since the epoch, exactly (a float timestamp loses microseconds)."""
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    return (date - _EPOCH) // timedelta(microseconds=1) * 1000


# --- writing ------------------------------------------------------------------------------


class MaildirWriter:
    """Delivers MailItems into a Maildir folder, created if missing.

    Keywords get letters from dovecot-keywords (extended and rewritten at once when a new
    keyword appears); beyond 26, or if not an IMAP atom, they go to dropped_keywords.
    Not safe against another program editing dovecot-keywords at the same time.
    """

    def __init__(self, path: PathArg, *, fsync: bool = True, create: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.dropped_keywords: set[str] = set()
        if create:
            for sub in ("", "tmp", "new", "cur"):
                (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        elif not is_maildir(self.path):
            raise ValueError(f"not a Maildir (needs cur/ and new/): {self.path}")
        (self.path / "tmp").mkdir(mode=0o700, exist_ok=True)
        self._names = read_dovecot_keywords(self.path)  # letter → keyword
        self._letters = {name.casefold(): letter for letter, name in self._names.items()}
        self._host = _hostname()
        self._pid = os.getpid()
        self._serial = 0
        self._last_us = 0
        self._use_links = True
        self._written = False

    def write(self, item: MailItem) -> Path:
        """Deliver one message; return the path of its file in new/ or cur/."""
        raw = to_lf(item.data)
        letters = info_letters(item.flags, self._keyword_letters(item.keywords))
        base, tmp = self._create_tmp(raw, item.internal_date)
        sub = "cur" if letters else "new"
        info = f":2,{letters}" if letters else ""
        while True:
            final = self.path / sub / f"{base},S={len(raw)},W={crlf_size(raw)}{info}"
            if self._deliver(tmp, final):
                break
            base = self._unique_base()
        self._written = True
        return final

    def close(self) -> None:
        """Make the deliveries durable: fsync new/ and cur/ (the renames live there)."""
        if self.fsync and self._written:
            for sub in ("new", "cur", ""):
                _fsync_dir(self.path / sub)
        self._written = False

    def __enter__(self) -> MaildirWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _unique_base(self) -> str:
        # Strictly increasing (seconds, usec) per writer keeps delivery order readable.
        now_us = max(time.time_ns() // 1000, self._last_us + 1)
        self._last_us = now_us
        self._serial += 1
        seconds, usec = divmod(now_us, 1_000_000)
        return f"{seconds}.M{usec}P{self._pid}Q{self._serial}.{self._host}"

    def _create_tmp(self, raw: bytes, date: datetime | None) -> tuple[str, Path]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        while True:
            base = self._unique_base()
            tmp = self.path / "tmp" / base
            try:
                fd = os.open(tmp, flags, 0o600)
                break
            except FileExistsError:
                continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                if date is not None:
                    os.utime(f.fileno(), ns=(time.time_ns(), _to_ns(date)))
                if self.fsync:
                    os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return base, tmp

    def _deliver(self, tmp: Path, final: Path) -> bool:
        """Move tmp to final without replacing anything; False if final exists."""
        if self._use_links:
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            except OSError:  # no hard links here (some network and FUSE file systems)
                self._use_links = False
            else:
                tmp.unlink()
                return True
        if final.exists():
            return False
        tmp.rename(final)
        return True

    def _keyword_letters(self, keywords: frozenset[str]) -> dict[str, str]:
        letters: dict[str, str] = {}
        for keyword in keywords:
            if keyword.casefold() == FORWARDED.casefold():
                letters[keyword] = "P"
                continue
            letter = self._letters.get(keyword.casefold()) or self._new_letter(keyword)
            if letter is not None:
                letters[keyword] = letter
        return letters

    def _new_letter(self, keyword: str) -> str | None:
        free = [
            chr(c) for c in range(ord("a"), ord("a") + MAX_KEYWORDS) if chr(c) not in self._names
        ]
        if not free or not is_keyword(keyword) or keyword.startswith("\\"):
            self.dropped_keywords.add(keyword)
            return None
        letter = free[0]
        self._names[letter] = keyword
        self._letters[keyword.casefold()] = letter
        self._save_keywords()
        return letter

    def _save_keywords(self) -> None:
        tmp = self.path / f"{KEYWORDS_FILE}.tmp.{self._pid}"
        with open(tmp, "wb") as f:
            f.write(format_dovecot_keywords(self._names))
            if self.fsync:
                os.fsync(f.fileno())
        tmp.replace(self.path / KEYWORDS_FILE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
