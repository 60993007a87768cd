"""One IMAP connection: framing, states, the dispatch table, unsolicited responses.

The loop reads one complete command (lines and literals, with size limits), parses it with
the pure parser, checks the state against the command's table entry, runs the handler and
turns its typed errors into NO / BAD / BYE here, in one place. Responses go into one buffer
per command, written in large chunks.

Unsolicited EXISTS / EXPUNGE / FETCH come from the store's change feed (RFC 9051 §7): they
queue in :class:`Selected` and are sent after a command completes or during IDLE, never an
EXPUNGE while answering FETCH, STORE or SEARCH by sequence number (§7.5.1).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from courriel import metrics
from courriel.imap import errors
from courriel.imap.mailindex import Feeds, UserFeed, feeds_for
from courriel.imap.protocol import encoder
from courriel.imap.protocol.parser import ParseError, parse_command, parse_tag
from courriel.imap.protocol.reader import literal_suffix
from courriel.imap.protocol.types import Command
from courriel.imap.selected import Selected
from courriel.net import Connection
from courriel.store.api import (
    AlreadyExists,
    Flag,
    InvalidName,
    NotFound,
    QuotaExceeded,
    Store,
    StoreError,
)
from courriel.store.changes import (
    Change,
    FeedGap,
    FlagsChanged,
    MailboxDeleted,
    MailboxRenamed,
    MessageAdded,
    MessagesExpunged,
)
from courriel.trace.events import Retrievals

if TYPE_CHECKING:
    from courriel.imap.notify import NotifyState
    from courriel.imap.server import ImapSettings

log = logging.getLogger("courriel.imap")

FLUSH_AT = 256 * 1024
#: A non-synchronising literal this large is not even skipped: the connection ends.
DISCARD_MAX = 256 * 1024 * 1024
PRE_AUTH_LITERAL = 8192
#: One MULTIAPPEND holds at most this many maximal messages in memory.
APPEND_TOTAL_FACTOR = 4
#: The changes a selected mailbox queues (RFC 9051 §7), when they concern it.
_SELECTED_CHANGES = frozenset({FeedGap, MessageAdded, FlagsChanged, MessagesExpunged, MailboxDeleted, MailboxRenamed})
_NONE: frozenset[int] = frozenset()


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


NOT_AUTH = frozenset({State.NOT_AUTHENTICATED})
AUTHED = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})
ANY = NOT_AUTH | AUTHED

Handler = Callable[["Session", Command], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Entry:
    handler: Handler
    states: frozenset[State]
    #: EXPUNGE responses may be sent at this command's end (RFC 9051 §7.5.1: not after
    #: FETCH, STORE, SEARCH by sequence number).
    expunge_ok: bool = True


class Session:
    __slots__ = (
        "_counted", "address", "compressed", "condstore", "conn", "feed", "feeds", "notify", "out", "qresync",
        "retrievals", "rev2", "selected", "settings", "state", "store", "table", "user_id", "utf8", "wake",
    )  # fmt: skip

    def __init__(self, conn: Connection, settings: ImapSettings, table: dict[str, Entry]) -> None:
        self.conn = conn
        self.settings = settings
        self.store: Store = settings.ctx.store
        self.feeds: Feeds = feeds_for(self.store)
        self.table = table
        self.state = State.NOT_AUTHENTICATED
        self.user_id = 0
        self.address = ""
        self.rev2 = False  # ENABLE IMAP4rev2 (RFC 9051 §6.3.1)
        self.utf8 = False  # mailbox names in UTF-8 (IMAP4rev2 or UTF8=ACCEPT)
        self.condstore = False  # RFC 7162 §3.1: a CONDSTORE-enabling command was seen
        self.qresync = False  # RFC 7162 §3.2.3: ENABLE QRESYNC
        self.compressed = False  # RFC 4978
        self.notify: NotifyState | None = None  # RFC 5465
        self.selected: Selected | None = None
        self.feed: UserFeed | None = None
        self.out = bytearray()
        self.wake = asyncio.Event()
        self._counted = False
        self.retrievals = Retrievals.for_session(settings.ctx, "IMAP", conn)  # message events

    # --- output --------------------------------------------------------------------------
    async def flush(self) -> None:
        if self.out:
            data = bytes(self.out)
            self.out.clear()
            writer = self.conn.writer
            writer.write(data)
            if writer.transport.get_write_buffer_size():
                # A client that sends commands but never reads the responses is dropped
                # after the inactivity timeout (TimeoutError ends the connection).
                async with asyncio.timeout(self.timeout):
                    await writer.drain()

    @property
    def timeout(self) -> float:
        """The inactivity limit now: short before login, RFC 9051 §5.4's 30 minutes after."""
        if self.state is State.NOT_AUTHENTICATED:
            return self.settings.login_timeout
        return self.settings.idle_timeout

    async def maybe_flush(self) -> None:
        if len(self.out) >= FLUSH_AT:
            await self.flush()

    def untagged(self, text: str | bytes) -> None:
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.out += b"* " + text + b"\r\n"

    def mailbox_name(self, name: str) -> bytes:
        return encoder.mailbox(name, self.utf8)

    # --- capabilities ----------------------------------------------------------------------
    @property
    def plaintext_ok(self) -> bool:
        return self.conn.tls or self.settings.allow_plaintext_auth

    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "IMAP4rev2", *self.settings.base_capabilities]
        if not self.compressed:
            caps.append("COMPRESS=DEFLATE")
        if self.state is State.NOT_AUTHENTICATED:
            if not self.conn.tls and self.settings.starttls:
                caps.append("STARTTLS")
            if self.plaintext_ok:
                caps.extend("AUTH=" + m for m in self.settings.mechanisms)
            else:
                caps.append("LOGINDISABLED")
        return " ".join(caps)

    # --- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        self.conn.on_shutdown = self._shutdown
        try:
            self.untagged(f"OK [CAPABILITY {self.capabilities()}] courriel IMAP4rev2 server ready")
            await self.flush()
            while self.state is not State.LOGOUT:
                try:
                    async with asyncio.timeout(self.timeout):
                        data = await self._next_command()
                except TimeoutError:
                    self.untagged("BYE autologout: idle for too long")
                    await self.flush()
                    return
                if data is not None:
                    await self.dispatch(data)
                await self.flush()
        except errors.Bye as exc:
            self.untagged("BYE " + exc.text)
            try:
                await self.flush()
            except (ConnectionError, OSError):
                pass
        except asyncio.IncompleteReadError:
            pass
        finally:
            if self.address:
                log.info(
                    "imap: %s logged out from %s after %.0f s", self.address, self.conn.peer_ip,
                    time.monotonic() - self.conn.opened,
                )  # fmt: skip
            self.close_selected()
            self.detach()
            self.settings.release_user(self)
            if self.retrievals is not None:
                self.retrievals.close()

    async def _next_command(self) -> bytes | None:
        """The next command; with NOTIFY set, notifications go out while the client is quiet
        (RFC 5465 §3: no command in progress is needed for them)."""
        if self.notify is None:
            return await self.read_command()
        read = asyncio.ensure_future(self.read_command())
        try:
            while True:
                waker = asyncio.ensure_future(self.wake.wait())
                done, _ = await asyncio.wait({read, waker}, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    waker.cancel()
                    return read.result()
                # cleared before the updates: a change arriving while they are sent wakes
                # the next wait instead of being left until another one comes
                self.wake.clear()
                await self.updates(False)
                await self.flush()
        finally:
            if not read.done():
                read.cancel()

    def attach(self, user_id: int) -> None:
        """Follow the user's change feed (after login): one subscription per user, shared."""
        self.feed = self.feeds.attach(user_id, self._on_changes)

    def detach(self) -> None:
        if self.feed is not None:
            self.feeds.detach(self.user_id, self._on_changes)
            self.feed = None

    def enable_condstore(self) -> None:
        """RFC 7162 §3.1: after the first CONDSTORE-enabling command, FETCH responses carry
        MODSEQ; when a mailbox is already selected, its HIGHESTMODSEQ is announced now."""
        if self.condstore:
            return
        self.condstore = True
        sel = self.selected
        if sel is not None:
            self.untagged(b"OK [HIGHESTMODSEQ %d] Highest" % sel.index.highestmodseq)

    async def _shutdown(self) -> None:
        self.conn.writer.write(b"* BYE server shutting down\r\n")
        await self.conn.writer.drain()

    # --- framing (RFC 9051 §2.2, §4.3, RFC 7888 LITERAL+) --------------------------------------
    async def _read_line(self) -> tuple[bytes | None, bytes]:
        """A line with its LF, or (None, tail) when it exceeded the limit and was discarded."""
        reader = self.conn.reader
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            tail = b""
            head = b""
            found = "found" in str(exc) and "not found" not in str(exc)
            while True:
                chunk = await reader.readexactly(exc.consumed)
                head = head or chunk[:64]
                tail = (tail + chunk)[-64:]
                if found:
                    break
                try:
                    rest = await reader.readuntil(b"\n")
                    tail = (tail + rest)[-64:]
                    break
                except asyncio.LimitOverrunError as again:
                    exc = again
                    found = "found" in str(exc) and "not found" not in str(exc)
            if found:
                tail = (tail + await reader.readuntil(b"\n"))[-64:]
            # The start (for the tag) and the end (for a literal announcement) of the line.
            return None, head + b"\0" + tail
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        return line, line

    def _literal_limit(self, head: bytes) -> int:
        if self.state is State.NOT_AUTHENTICATED:
            return PRE_AUTH_LITERAL
        words = head.split(b" ", 3)
        if len(words) > 1 and words[1].upper() == b"APPEND":
            return self.settings.max_message_size
        return self.settings.max_line_length

    async def _skip(self, n: int) -> None:
        while n > 0:
            chunk = await self.conn.reader.read(min(n, 1 << 20))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", n)
            n -= len(chunk)

    async def read_command(self) -> bytes | None:
        """One complete command, or None when it was refused while being read (answered)."""
        parts: list[bytes] = []
        head = b""
        size = 0
        error: errors.ImapError | None = None
        while True:
            line, tail = await self._read_line()
            if not parts and not head:
                head = line if line is not None else tail
            if line is None:
                error = error or errors.Bad("line too long", "TOOBIG")
            elif error is None:
                parts.append(line)
                size += len(line)
            lit = literal_suffix(tail)
            if lit is None:
                break
            n, nonsync, _binary = lit
            limit = self._literal_limit(head)
            # MULTIAPPEND (RFC 3502) carries several messages: their total is bounded too.
            total = limit * (APPEND_TOTAL_FACTOR if limit == self.settings.max_message_size else 1)
            if error is None and (n > limit or size + n > total + 16 * self.settings.max_line_length):
                error = errors.No(f"literal too large (limit {limit} octets)", "TOOBIG")  # RFC 7889
            if error is not None:
                if not nonsync:
                    break  # the client waits for "+"; the refusal replaces it
                if n > DISCARD_MAX:
                    raise errors.Bye("literal too large")
                await self._skip(n)
                continue
            if not nonsync:
                self.conn.writer.write(b"+ Ready for literal data\r\n")
                await self.conn.writer.drain()
            parts.append(await self.conn.reader.readexactly(n))
            size += n
            if not nonsync:
                _quickack(self.conn)
        if error is not None:
            tag = parse_tag(head) if head else None
            self.out += error.line(tag or "*", "NO" if isinstance(error, errors.No) else "BAD")
            return None
        return b"".join(parts)

    # --- dispatch ---------------------------------------------------------------------------
    async def dispatch(self, data: bytes) -> None:
        try:
            cmd = parse_command(data, utf8=self.utf8)
        except ParseError as exc:
            tag = parse_tag(data) or "*"
            self.out += errors.Bad(str(exc)).line(tag, "BAD")
            return
        entry = self.table[cmd.name]
        if self.state not in entry.states:
            self.out += errors.Bad(f"{cmd.name} not allowed in the {self.state.value} state").line(cmd.tag, "BAD")
            return
        log.debug("%s: %s", self.conn.peer_ip, cmd.name)
        started = time.perf_counter()
        try:
            text = await entry.handler(self, cmd)
        except errors.Bye:
            raise
        except errors.No as exc:
            await self.updates(entry.expunge_ok)
            self.out += exc.line(cmd.tag, "NO")
            return
        except errors.Bad as exc:
            self.out += exc.line(cmd.tag, "BAD")
            return
        except StoreError as exc:
            await self.updates(entry.expunge_ok)
            self.out += errors.No(str(exc), _store_code(exc)).line(cmd.tag, "NO")
            return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, TimeoutError):
            raise
        except Exception:
            log.exception("imap: %s failed for %s", cmd.name, self.address or self.conn.peer_ip)
            self.out += errors.No("internal server error", "SERVERBUG").line(cmd.tag, "NO")
            return
        finally:
            metrics.command("imap", cmd.name, time.perf_counter() - started)
        if not text:  # the handler sent its tagged reply itself (STARTTLS)
            return
        if self.state is State.LOGOUT:
            self.out += f"{cmd.tag} OK {text}\r\n".encode()
            return
        await self.updates(entry.expunge_ok)
        self.out += f"{cmd.tag} OK {text}\r\n".encode("utf-8", "replace")

    # --- the selected mailbox and the change feed -----------------------------------------------
    def watch(self, selected: Selected) -> None:
        """Make ``selected`` the selected mailbox; changes to it arrive through the user's feed."""
        self.close_selected()
        self.selected = selected
        self.state = State.SELECTED

    def close_selected(self) -> None:
        self.selected = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    def _on_changes(self, changes: Sequence[Change]) -> None:
        sel = self.selected
        woke = False
        if sel is not None:
            # Exact types (the change dataclasses have no subclasses): a set lookup per change.
            sid, kinds = sel.id, _SELECTED_CHANGES
            wanted = [
                c for c in changes
                if type(c) in kinds and (type(c) is FeedGap or c.mailbox_id == sid)  # type: ignore[attr-defined]
            ]  # fmt: skip
            if wanted:
                sel.pending.extend(wanted)
                woke = True
        if self.notify is not None and self.notify.collect(changes, sel.id if sel is not None else None):
            woke = True
        if woke:
            self.wake.set()

    async def updates(self, expunge_ok: bool) -> None:
        """Turn queued changes into untagged responses, as far as RFC 9051 §7 allows now."""
        if self.notify is not None:
            await self.notify.emit(self)
        sel = self.selected
        if sel is None or not sel.pending:
            return
        pending, sel.pending = sel.pending, []
        gap = next((i for i, ch in enumerate(pending) if isinstance(ch, FeedGap)), -1)
        if gap < 0:
            added = self._announce(sel, pending, expunge_ok)
        else:  # what came before the gap, then the difference with the store
            added = self._announce(sel, pending[:gap], expunge_ok)
            added |= self._announce(sel, await self.resync(sel), expunge_ok)
        sel.realign()
        if added:
            self.out += b"* %d EXISTS\r\n" % sel.exists
            if not self.rev2:
                await self._claim_recent(sel)
                self.out += b"* %d RECENT\r\n" % len(sel.recent)
        if sel.deleted and expunge_ok:
            raise errors.Bye("the selected mailbox was deleted")

    def _announce(self, sel: Selected, pending: Sequence[Change], expunge_ok: bool) -> bool:
        """Apply ``pending`` to the session's view, writing FETCH and EXPUNGE (or VANISHED)
        responses; EXPUNGE that may not be sent now stay queued. True when UIDs were added."""
        keep: list[Change] = []
        added = False
        own = sel.own_modseqs or _NONE
        for ch in pending:
            if type(ch) is FlagsChanged and ch.modseq in own:
                continue  # this session's own STORE, already answered
            if isinstance(ch, MessageAdded):
                added |= sel.add(ch.uid)
            elif isinstance(ch, FlagsChanged):
                seq = sel.seq_of(ch.uid)
                if seq:
                    new_kw = ch.keywords - sel.keywords
                    if new_kw:
                        sel.keywords |= new_kw
                        self.untagged(b"FLAGS " + encoder.flag_list(Flag(0x1F), sel.keywords))
                    flags = encoder.flag_list(Flag(ch.flags), ch.keywords, ch.uid in sel.recent)
                    if self.condstore:  # RFC 7162 §3.2: MODSEQ in every unsolicited FETCH
                        self.out += b"* %d FETCH (UID %d FLAGS %s MODSEQ (%d))\r\n" % (seq, ch.uid, flags, ch.modseq)
                    else:
                        self.out += b"* %d FETCH (UID %d FLAGS %s)\r\n" % (seq, ch.uid, flags)
            elif isinstance(ch, MessagesExpunged):
                if not expunge_ok or keep:
                    keep.append(ch)
                    continue
                self.expunged(sel, ch.uids)
            elif isinstance(ch, MailboxRenamed):
                sel.name = ch.name
            elif isinstance(ch, MailboxDeleted):
                sel.deleted = True
        sel.pending[:0] = keep
        return added

    async def resync(self, sel: Selected) -> list[Change]:
        """After a :class:`FeedGap` (the feed lost changes): read the mailbox again and return
        how it differs from this session's view, as changes to announce: UIDs above the
        view's last are new, UIDs gone were expunged, and a flag whose MODSEQ is newer than
        the view's index had changed. Changes queued after the gap are in what is read."""
        assert self.feed is not None
        mb = await self.store.get_mailbox_by_id(sel.id)
        if mb is None or mb.uidvalidity != sel.uidvalidity:
            return [MailboxDeleted(self.user_id, 0, sel.id, sel.name)]
        sel.name = mb.name
        old, index = sel.index, await self.feeds.index(self.feed, mb)
        out: list[Change] = []
        gone: list[int] = []
        for uid in sel.uids:
            i = index.position(uid)
            if i < 0:
                gone.append(uid)
                continue
            j = old.position(uid)
            if j < 0 or index.modseqs[i] > old.modseqs[j]:
                kw = index.keywords.get(uid, frozenset())
                out.append(FlagsChanged(self.user_id, index.modseqs[i], sel.id, uid, index.flags[i], kw))
        if gone:
            out.append(MessagesExpunged(self.user_id, index.highestmodseq, sel.id, tuple(gone)))
        last = sel.last_uid
        for i in range(bisect_right(index.uids, last), len(index.uids)):
            uid = index.uids[i]
            kw = index.keywords.get(uid, frozenset())
            out.append(MessageAdded(self.user_id, index.modseqs[i], sel.id, uid, index.flags[i], kw, 0))
        sel.index = index
        log.info("imap: %s: mailbox %d resynchronised after a gap in the change feed", self.address, sel.id)
        return out

    def expunged(self, sel: Selected, uids: Sequence[int]) -> None:
        """Forget ``uids`` and announce it: EXPUNGE, or VANISHED once QRESYNC is enabled
        (RFC 7162 §3.2.10)."""
        if self.qresync:
            known = [u for u in uids if sel.seq_of(u)]
            sel.remove(uids)
            if known:
                self.out += b"* VANISHED " + encoder.seqset(sorted(known)) + b"\r\n"
            return
        for seq in sel.remove(uids):
            self.out += b"* %d EXPUNGE\r\n" % seq

    async def _claim_recent(self, sel: Selected) -> None:
        """\\Recent for IMAP4rev1 (RFC 3501 §2.3.2): new messages this session is first to see."""
        upto = sel.last_uid + 1
        if sel.readonly:
            first = await self.store.claim_recent(sel.id, 0)  # a peek: claims nothing
        else:
            first = await self.store.claim_recent(sel.id, upto)
        i = len(sel.uids)
        while i > 0 and sel.uids[i - 1] >= first:
            i -= 1
        sel.add_recent(sel.uids[i:])


def _quickack(conn: Connection) -> None:
    """ACK the literal now. A client that waited for "+" often sends the literal and the
    rest of the line in two writes (imaplib does); with Nagle on its side, the second waits
    for our ACK, which Linux delays up to 40 ms: an APPEND would stall that long."""
    sock = conn.writer.get_extra_info("socket")
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
    except OSError:
        pass


def _store_code(exc: StoreError) -> str | None:
    if isinstance(exc, NotFound):
        return "NONEXISTENT"
    if isinstance(exc, AlreadyExists):
        return "ALREADYEXISTS"
    if isinstance(exc, QuotaExceeded):
        return "OVERQUOTA"
    if isinstance(exc, InvalidName):
        return "CANNOT"
    return None
