"""Download mail into a local Maildir: POP3 (RFC 1939) by UIDL, IMAP by UIDVALIDITY/UID.

Nothing is fetched twice: POP3 UIDLs already saved are kept in a per-account log (one
line each, appended and flushed as each message is safely in the Maildir, pruned of UIDLs
the server no longer has at the end); for IMAP the folder's UIDVALIDITY and the highest
UID saved are kept (RFC 9051 §2.3.1.1: a UID names the same message for as long as
UIDVALIDITY is unchanged). A message is deleted on the server only after its file in
the Maildir has been fsynced.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import poplib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from courriel.mailformats.item import MailItem
from courriel.mailformats.maildir import MaildirWriter

from .accounts import Account
from .errors import ClientError, talking_to
from .imap import Mailboxes
from .transport import open_pop3

_MAX_UIDL = 70  # RFC 1939 §7: 1 to 70 characters in 0x21-0x7E
_CHECKPOINT = 100  # messages between making the Maildir and the saved positions durable


class Reporter(Protocol):
    def start(self, messages: int, octets: int) -> None: ...
    def advance(self, octets: int) -> None: ...


class Quiet:
    def start(self, messages: int, octets: int) -> None:
        pass

    def advance(self, octets: int) -> None:
        pass


@dataclass(slots=True)
class FetchResult:
    fetched: int = 0
    skipped: int = 0
    deleted: int = 0
    octets: int = 0


def _state_key(account: Account, service: str) -> str:
    srv = account.server(service)
    ident = f"{srv.host}:{srv.port}:{account.login}".encode()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in account.name)
    return f"{safe}-{hashlib.sha256(ident).hexdigest()[:12]}"


class UidlLog:
    """The POP3 UIDLs already saved for one account and server."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: set[str] = set()
        try:
            self.seen = {line for line in path.read_text("ascii").splitlines() if line}
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientError(f"cannot read {path}: {exc}") from None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fh = open(path, "a", encoding="ascii")  # noqa: SIM115 (closed in close())
        self._pending: list[str] = []

    def add(self, uidl: str) -> None:
        """Remember ``uidl``; it reaches the disk at the next ``commit``."""
        self.seen.add(uidl)
        self._pending.append(uidl)

    def commit(self) -> None:
        """Make the UIDLs added so far durable. Call it only once their messages are
        durable in the Maildir, so a crash can cause a second download, never a loss."""
        if self._pending:
            self._fh.write("".join(u + "\n" for u in self._pending))
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._pending.clear()

    def prune(self, on_server: set[str]) -> None:
        """Forget UIDLs the server no longer has (deleted there: they never come back)."""
        self.commit()
        self._fh.close()
        keep = sorted(self.seen & on_server)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(u + "\n" for u in keep), "ascii")
        os.replace(tmp, self.path)
        self.seen = set(keep)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def parse_uidl_lines(lines: list[bytes]) -> dict[int, str]:
    """``msg uidl`` lines of a multi-line UIDL response (RFC 1939 §7) → {number: uidl}."""
    out: dict[int, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ClientError(f"malformed UIDL line from the server: {line[:80]!r}")
        uidl = parts[1].decode("ascii", "replace")
        if not 1 <= len(uidl) <= _MAX_UIDL or not all(0x21 <= b <= 0x7E for b in parts[1]):
            raise ClientError(f"malformed UIDL from the server: {parts[1][:80]!r}")
        out[int(parts[0])] = uidl
    return out


def parse_list_lines(lines: list[bytes]) -> dict[int, int]:
    """``msg octets`` lines of a multi-line LIST response (RFC 1939 §5) → {number: size}."""
    out: dict[int, int] = {}
    for line in lines:
        parts = line.split()
        if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ClientError(f"malformed LIST line from the server: {line[:80]!r}")
        out[int(parts[0])] = int(parts[1])
    return out


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Local file errors (disk full, permissions) as one line naming the path."""
    try:
        yield
    except OSError as exc:
        raise ClientError(f"cannot write to {path}: {exc.strerror or exc}") from None


def pop3_fetch(account: Account, maildir: Path, state: Path, delete: bool, report: Reporter) -> FetchResult:
    result = FetchResult()
    srv = account.server("pop3")
    net = functools.partial(talking_to, "POP3", srv.host, srv.port)
    with writing(state):
        log = UidlLog(state / (_state_key(account, "pop3") + ".uidl"))
    conn = open_pop3(account)
    try:
        with net():
            try:
                _resp, uidl_lines, _ = conn.uidl()
            except poplib.error_proto as exc:
                raise ClientError(f"POP3 {srv.host}:{srv.port} does not support UIDL ({exc})") from None
            uidls = parse_uidl_lines(uidl_lines)
            sizes = parse_list_lines(conn.list()[1])
        todo = [n for n in sorted(uidls) if uidls[n] not in log.seen]
        result.skipped = len(uidls) - len(todo)
        report.start(len(todo), sum(sizes.get(n, 0) for n in todo))
        with writing(maildir), MaildirWriter(maildir) as writer:
            for n in todo:
                with net():
                    lines = conn.retr(n)[1]  # poplib undoes dot-stuffing
                data = b"\r\n".join(lines) + b"\r\n"
                writer.write(MailItem(data))  # the file is fsynced
                log.add(uidls[n])
                result.fetched += 1
                result.octets += len(data)
                report.advance(sizes.get(n, len(data)))
                if result.fetched % _CHECKPOINT == 0:
                    writer.close()  # fsync new/ before the UIDLs are recorded
                    log.commit()
            writer.close()
            log.commit()  # before any DELE
        with net():
            if delete:
                for n, uidl in uidls.items():
                    if uidl in log.seen:
                        conn.dele(n)
                        result.deleted += 1
            conn.quit()  # RFC 1939 §6: deletions happen in the UPDATE state
        on_server = set(uidls.values())
        if delete:
            on_server -= log.seen
        with writing(state):
            log.prune(on_server)
    finally:
        log.close()
        try:
            conn.close()
        except OSError:
            pass
    return result


def _load_json(path: Path) -> dict[str, dict[str, int]]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _save_json(path: Path, data: object) -> None:
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def imap_fetch(session: Mailboxes, folder: str, maildir: Path, state: Path, delete: bool,
               report: Reporter) -> FetchResult:  # fmt: skip
    result = FetchResult()
    path = state / (_state_key(session.account, "imap") + ".imap.json")
    positions = _load_json(path)
    info = session.select(folder, readonly=not delete)
    validity = int(info.get(b"UIDVALIDITY", 0))
    pos = positions.get(folder, {})
    last = pos.get("last_uid", 0) if pos.get("uidvalidity") == validity else 0
    with talking_to(*session.where):
        all_uids = sorted(int(u) for u in session.client.search(["ALL"]))
        todo = [u for u in all_uids if u > last]
        result.skipped = len(all_uids) - len(todo)
        sized = session.client.fetch(todo, ["RFC822.SIZE"]) if todo else {}
        sizes = {int(u): int(v.get(b"RFC822.SIZE", 0)) for u, v in sized.items()}
    report.start(len(todo), sum(sizes.values()))
    saved: list[int] = []
    with writing(maildir), MaildirWriter(maildir) as writer:
        for uid, data, flags in session.fetch_many(todo):
            system = frozenset(f for f in flags if f.startswith("\\") and f != "\\Recent")
            keywords = frozenset(f for f in flags if not f.startswith("\\"))
            writer.write(MailItem(data, flags=system, keywords=keywords))
            saved.append(uid)
            result.fetched += 1
            result.octets += len(data)
            report.advance(sizes.get(uid, len(data)))
            if len(saved) % _CHECKPOINT == 0:
                writer.close()
                positions[folder] = {"uidvalidity": validity, "last_uid": uid}
                _save_json(path, positions)
        writer.close()
    if saved:
        positions[folder] = {"uidvalidity": validity, "last_uid": max(saved)}
        _save_json(path, positions)
    if delete and all_uids:
        already = [u for u in all_uids if u <= last] + saved
        if already:
            session.expunge_uids(already)
            result.deleted = len(already)
    return result
