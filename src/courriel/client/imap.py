"""Mailbox operations over IMAP (RFC 9051/3501) with imapclient: folders, listing,
reading, searching, moving, copying, flags, deleting and appending.

Messages are named by their UID in the folder (RFC 9051 §2.3.1.1), stable across
sessions, unlike sequence numbers. Folder names are Unicode here; imapclient encodes
them in modified UTF-7 (RFC 3501 §5.1.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from courriel.mime import decode_header_value, parse_addresses, parse_date

from .accounts import Account
from .errors import ClientError, talking_to
from .transport import open_imap

# RFC 6154 special-use attributes.
SENT = b"\\Sent"
DRAFTS = b"\\Drafts"
TRASH = b"\\Trash"
FLAG_NAMES = {
    "seen": "\\Seen", "answered": "\\Answered", "flagged": "\\Flagged",
    "deleted": "\\Deleted", "draft": "\\Draft", "forwarded": "$Forwarded",
}  # fmt: skip
_LIST_FIELDS = b"BODY.PEEK[HEADER.FIELDS (DATE FROM TO SUBJECT)]"
_FETCH_CHUNK = 500


def flag_name(word: str) -> str:
    """``seen`` → ``\\Seen``; a system flag as written; anything else is a keyword."""
    lowered = word.lower().lstrip("\\")
    if lowered in FLAG_NAMES:
        return FLAG_NAMES[lowered]
    if word.startswith("\\"):
        raise ClientError(f"unknown system flag {word!r}")
    if not word or any(c in word for c in ' (){%*"\\]') or not word.isascii():
        raise ClientError(f"invalid keyword {word!r}")
    return word


@dataclass(slots=True)
class Summary:
    """One line of a folder listing."""

    uid: int
    date: datetime | None
    sender: str
    to: str
    subject: str
    flags: tuple[str, ...]
    size: int


@dataclass(slots=True)
class Folder:
    name: str
    flags: tuple[str, ...]
    delimiter: str
    subscribed: bool


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def summary_from_headers(uid: int, raw: bytes, flags: Iterable[object], size: int) -> Summary:
    """A Summary from the raw DATE FROM TO SUBJECT header block."""
    fields: dict[str, str] = {}
    current = ""
    for line in raw.decode("utf-8", "surrogateescape").splitlines():
        if line[:1] in (" ", "\t") and current:
            fields[current] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            current = name.strip().lower()
            fields.setdefault(current, value.strip())

    def people(value: str) -> str:
        addrs = parse_addresses(value)
        return ", ".join(name or addr for name, addr in addrs) if addrs else decode_header_value(value)

    return Summary(
        uid=uid,
        date=parse_date(fields.get("date")),
        sender=people(fields.get("from", "")),
        to=people(fields.get("to", "")),
        subject=decode_header_value(fields.get("subject", "")),
        flags=tuple(t for t in (_text(f) for f in flags) if t.lower() != "\\recent"),  # session state
        size=size,
    )


class Mailboxes:
    """A logged-in IMAP session for one account."""

    def __init__(self, account: Account, client: IMAPClient) -> None:
        self.account = account
        self.client = client
        srv = account.server("imap")
        self.where = ("IMAP", srv.host, srv.port)
        self.selected: str | None = None

    # -- folders --------------------------------------------------------------------
    def folders(self) -> list[Folder]:
        with talking_to(*self.where):
            subscribed = {f[2] for f in self.client.list_sub_folders()}
            return [
                Folder(name, tuple(_text(f) for f in flags), _text(delim or b""), name in subscribed)
                for flags, delim, name in self.client.list_folders()
            ]

    def special(self, use: bytes, configured: str, create: str) -> str:
        """The folder with special-use ``use`` (RFC 6154), else a usual name, else the
        account's configured one; created as ``create`` when nothing exists."""
        if configured:
            return configured
        with talking_to(*self.where):
            found = self.client.find_special_folder(use)
            if found:
                return str(found)
            self.client.create_folder(create)
        return create

    def create(self, name: str) -> None:
        self._folder_op("create", name, lambda: self.client.create_folder(name))

    def rename(self, old: str, new: str) -> None:
        self._folder_op("rename", old, lambda: self.client.rename_folder(old, new))

    def delete_folder(self, name: str) -> None:
        self._folder_op("delete", name, lambda: self.client.delete_folder(name))

    def subscribe(self, name: str, on: bool = True) -> None:
        op = self.client.subscribe_folder if on else self.client.unsubscribe_folder
        self._folder_op("subscribe to" if on else "unsubscribe from", name, lambda: op(name))

    def _folder_op(self, verb: str, name: str, call: Any) -> None:
        with talking_to(*self.where):
            try:
                call()
            except IMAPClientError as exc:
                raise ClientError(f"cannot {verb} folder {name!r}: {_server_text(exc)}") from None

    # -- messages -------------------------------------------------------------------
    def select(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        with talking_to(*self.where):
            try:
                info: dict[bytes, Any] = self.client.select_folder(folder, readonly=readonly)
            except IMAPClientError as exc:
                raise ClientError(f"unknown folder {folder!r}: {_server_text(exc)}") from None
        self.selected = folder
        return info

    def uids(self, folder: str) -> list[int]:
        self.select(folder, readonly=True)
        with talking_to(*self.where):
            return sorted(int(u) for u in self.client.search(["ALL"]))

    def summaries(self, uids: Sequence[int]) -> list[Summary]:
        """Listing lines of ``uids`` in the selected folder, in the order given."""
        out: dict[int, Summary] = {}
        with talking_to(*self.where):
            for start in range(0, len(uids), _FETCH_CHUNK):
                chunk = list(uids[start : start + _FETCH_CHUNK])
                data = self.client.fetch(chunk, ["FLAGS", "RFC822.SIZE", _LIST_FIELDS])
                for uid, item in data.items():
                    header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"")
                    out[int(uid)] = summary_from_headers(
                        int(uid), header or b"", item.get(b"FLAGS", ()), int(item.get(b"RFC822.SIZE", 0))
                    )
        return [out[u] for u in uids if u in out]

    def fetch_raw(self, folder: str, uid: int, mark_seen: bool = True) -> bytes:
        self.select(folder, readonly=not mark_seen)
        with talking_to(*self.where):
            data = self.client.fetch([uid], ["BODY.PEEK[]"])
            if mark_seen and uid in data:
                self.client.add_flags([uid], ["\\Seen"], silent=True)
        if uid not in data:
            raise ClientError(f"no message with UID {uid} in {folder!r}")
        raw = data[uid].get(b"BODY[]")
        if not isinstance(raw, bytes):
            raise ClientError(f"the server sent no content for UID {uid} in {folder!r}")
        return raw

    def fetch_many(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes, tuple[str, ...]]]:
        """(uid, raw message, flags) of each UID in the selected folder, a chunk at a time."""
        with talking_to(*self.where):
            for start in range(0, len(uids), 50):
                chunk = list(uids[start : start + 50])
                data = self.client.fetch(chunk, ["BODY.PEEK[]", "FLAGS"])
                for uid in chunk:
                    item = data.get(uid)
                    if item is None or not isinstance(item.get(b"BODY[]"), bytes):
                        continue
                    yield uid, item[b"BODY[]"], tuple(_text(f) for f in item.get(b"FLAGS", ()))

    def search(self, folder: str, criteria: Sequence[str | date]) -> list[int]:
        self.select(folder, readonly=True)
        ascii_only = all(not isinstance(c, str) or c.isascii() for c in criteria)
        charset = None if ascii_only else "UTF-8"  # RFC 9051 §6.4.4
        with talking_to(*self.where):
            try:
                found = self.client.search(list(criteria), charset=charset)
            except IMAPClientError as exc:
                raise ClientError(f"search refused: {_server_text(exc)}") from None
        return sorted(int(u) for u in found)

    def _existing(self, folder: str, uids: Sequence[int]) -> list[int]:
        self.select(folder)
        with talking_to(*self.where):
            present = {int(u) for u in self.client.search(["UID", ",".join(map(str, uids))])} if uids else set()
        missing = [u for u in uids if u not in present]
        if missing:
            raise ClientError(f"no message with UID {', '.join(map(str, missing))} in {folder!r}")
        return list(uids)

    def copy(self, folder: str, uids: Sequence[int], dest: str) -> None:
        uids = self._existing(folder, uids)
        with talking_to(*self.where):
            try:
                self.client.copy(uids, dest)
            except IMAPClientError as exc:
                raise ClientError(f"cannot copy to {dest!r}: {_server_text(exc)}") from None

    def move(self, folder: str, uids: Sequence[int], dest: str) -> None:
        uids = self._existing(folder, uids)
        with talking_to(*self.where):
            try:
                if self.client.has_capability("MOVE"):  # RFC 6851
                    self.client.move(uids, dest)
                    return
                self.client.copy(uids, dest)
            except IMAPClientError as exc:
                raise ClientError(f"cannot move to {dest!r}: {_server_text(exc)}") from None
        self.expunge_uids(uids)

    def set_flags(self, folder: str, uids: Sequence[int], flags: Sequence[str], on: bool) -> None:
        uids = self._existing(folder, uids)
        with talking_to(*self.where):
            try:
                if on:
                    self.client.add_flags(uids, list(flags), silent=True)
                else:
                    self.client.remove_flags(uids, list(flags), silent=True)
            except IMAPClientError as exc:
                raise ClientError(f"cannot change flags: {_server_text(exc)}") from None

    def delete(self, folder: str, uids: Sequence[int], trash: bool = False) -> str | None:
        """Expunge ``uids``; with ``trash``, move them to the Trash folder instead (and
        return its name) unless they are already there."""
        if trash:
            dest = self.special(TRASH, "", "Trash")
            if dest != folder:
                self.move(folder, uids, dest)
                return dest
        self.expunge_uids(self._existing(folder, uids))
        return None

    def expunge_uids(self, uids: Sequence[int]) -> None:
        with talking_to(*self.where):
            self.client.add_flags(list(uids), ["\\Deleted"], silent=True)
            if self.client.has_capability("UIDPLUS"):  # RFC 4315 §2.1: only these UIDs
                self.client.uid_expunge(list(uids))
            else:
                self.client.expunge()

    def append(self, folder: str, message: bytes, flags: Sequence[str] = ()) -> None:
        with talking_to(*self.where):
            try:
                self.client.append(folder, message, flags=tuple(flags))
            except IMAPClientError as exc:
                raise ClientError(f"cannot save to {folder!r}: {_server_text(exc)}") from None

    def close(self) -> None:
        try:
            self.client.logout()
        except (OSError, IMAPClientError):
            pass


def _server_text(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return " ".join(text.split())


@contextmanager
def mailboxes(account: Account) -> Iterator[Mailboxes]:
    session = Mailboxes(account, open_imap(account))
    try:
        yield session
    finally:
        session.close()
