"""NOTIFY (RFC 5465): what a session asked to hear about mailboxes other than the selected
one, and the STATUS / LIST responses that tell it.

The selected mailbox keeps its usual unsolicited EXISTS / EXPUNGE (VANISHED) / FETCH
responses. For other mailboxes matched by an event group, MessageNew, MessageExpunge and
FlagChange become an untagged STATUS (§5.2-5.4), and MailboxName becomes LIST (§5.5).
Notifications go out after a command, during IDLE, and while the client is quiet
(:meth:`Session._next_command`). SubscriptionChange becomes LIST with or without
\\Subscribed (§5.6), MailboxMetadataChange and ServerMetadataChange the unsolicited
METADATA response naming the changed entries (§5.7-5.8, RFC 5464 §4.4.2). Changes made by
this session are reported too (the store's feed does not tell sessions apart).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from courriel.imap.errors import Bad
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import NotifyGroup
from courriel.store.api import DELIMITER, INBOX
from courriel.store.changes import (
    Change,
    FeedGap,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRenamed,
    MessageAdded,
    MessagesExpunged,
    MetadataChanged,
    SubscriptionChanged,
)

if TYPE_CHECKING:
    from courriel.imap.session import Session

SUPPORTED = frozenset({
    "MESSAGENEW", "MESSAGEEXPUNGE", "FLAGCHANGE", "MAILBOXNAME", "SUBSCRIPTIONCHANGE", "MAILBOXMETADATACHANGE",
    "SERVERMETADATACHANGE",
})  # fmt: skip
MAX_QUEUED = 1000


def unsupported(groups: Sequence[NotifyGroup]) -> str | None:
    for g in groups:
        if ("MESSAGENEW" in g.events) != ("MESSAGEEXPUNGE" in g.events):
            raise Bad("MessageNew and MessageExpunge go together (RFC 5465 §5)")
        if "FLAGCHANGE" in g.events and "MESSAGENEW" not in g.events:
            raise Bad("FlagChange needs MessageNew and MessageExpunge (RFC 5465 §5)")
        for e in g.events:
            if e not in SUPPORTED:
                return e
    return None


class NotifyState:
    __slots__ = ("gap", "groups", "lists", "names", "status", "subscribed")

    def __init__(self, groups: Sequence[NotifyGroup], names: dict[int, str], subscribed: set[str]) -> None:
        self.groups = tuple(groups)
        self.names = names  # mailbox id -> name, kept current from MailboxCreated/Renamed/Deleted
        self.subscribed = subscribed
        self.status: set[int] = set()  # mailboxes owing a STATUS
        self.lists: list[bytes] = []  # LIST responses owed (encoded by the session later)
        self.gap = False  # the feed lost changes: names and counts are read again (emit)

    @classmethod
    async def create(cls, s: Session, groups: Sequence[NotifyGroup]) -> NotifyState:
        boxes = await s.store.list_mailboxes(s.user_id)
        subscribed = set(await s.store.list_subscriptions(s.user_id))
        return cls(groups, {m.id: m.name for m in boxes}, subscribed)

    def _events(self, name: str, selected: bool) -> frozenset[str]:
        events: set[str] = set()
        for g in self.groups:
            f = g.filter
            if f in ("SELECTED", "SELECTED-DELAYED"):
                hit = selected
            elif f == "PERSONAL":
                hit = True
            elif f == "INBOXES":
                hit = name == INBOX
            elif f == "SUBSCRIBED":
                hit = name in self.subscribed
            elif f == "MAILBOXES":
                hit = name in g.mailboxes
            else:  # SUBTREE
                hit = any(name == m or name.startswith(m + DELIMITER) for m in g.mailboxes)
            if hit:
                events |= g.events
        return frozenset(events)

    def collect(self, changes: Sequence[Change], selected_id: int | None) -> bool:
        """Note what ``changes`` owe this session; True when something is queued."""
        queued = False
        for ch in changes:
            if isinstance(ch, FeedGap):
                self.gap = True
                queued = True
                continue
            if isinstance(ch, SubscriptionChanged | MetadataChanged):
                queued = self._collect_other(ch, selected_id) or queued
                continue
            box = getattr(ch, "mailbox_id", None)
            if box is None:
                continue
            if isinstance(ch, MailboxCreated | MailboxRenamed | MailboxDeleted):
                old = self.names.get(box)
                if isinstance(ch, MailboxDeleted):
                    self.names.pop(box, None)
                else:
                    self.names[box] = ch.name
                if "MAILBOXNAME" in self._events(ch.name, False) and len(self.lists) < MAX_QUEUED:
                    self.lists.append(self._list_line(ch, old))
                    queued = True
                continue
            if box == selected_id:
                continue  # the selected mailbox's own responses
            name = self.names.get(box)
            if name is None:
                continue
            events = self._events(name, False)
            if (isinstance(ch, MessageAdded) and "MESSAGENEW" in events) or (
                isinstance(ch, MessagesExpunged) and "MESSAGEEXPUNGE" in events
            ) or (isinstance(ch, FlagsChanged) and "FLAGCHANGE" in events):  # fmt: skip
                self.status.add(box)
                queued = True
        return queued

    def _collect_other(self, ch: SubscriptionChanged | MetadataChanged, selected_id: int | None) -> bool:
        if len(self.lists) >= MAX_QUEUED:
            return False
        if isinstance(ch, SubscriptionChanged):  # §5.6
            # Matched before or after the change (the SUBSCRIBED filter follows it).
            before = self._events(ch.name, False)
            if ch.subscribed:
                self.subscribed.add(ch.name)
            else:
                self.subscribed.discard(ch.name)
            if "SUBSCRIPTIONCHANGE" not in before | self._events(ch.name, False):
                return False
            self.lists.append((b"S\0" if ch.subscribed else b"U\0") + ch.name.encode())
            return True
        if ch.mailbox_id is None:  # §5.8: server entries, whatever the filter
            if not any("SERVERMETADATACHANGE" in g.events for g in self.groups):
                return False
            name = ""
        else:  # §5.7
            box_name = self.names.get(ch.mailbox_id)
            if box_name is None or "MAILBOXMETADATACHANGE" not in self._events(
                box_name, ch.mailbox_id == selected_id
            ):
                return False
            name = box_name
        self.lists.append(b"M\0" + name.encode() + b"\0" + "\0".join(ch.names).encode())
        return True

    @staticmethod
    def _list_line(ch: Change, old: str | None) -> bytes:
        # Encoded lazily by emit (UTF-8 or modified UTF-7 depends on the session).
        if isinstance(ch, MailboxDeleted):
            return b"D\0" + ch.name.encode()
        if isinstance(ch, MailboxRenamed):
            return b"R\0" + ch.name.encode() + b"\0" + ch.old_name.encode()
        assert isinstance(ch, MailboxCreated)
        return b"C\0" + ch.name.encode()

    async def emit(self, s: Session) -> None:
        from courriel.imap.commands.mailboxes import status_line

        if self.gap:
            await self._resync(s)
        lists, self.lists = self.lists, []
        for item in lists:
            kind, _, rest = item.partition(b"\0")
            if kind == b"R":
                new, _, old = rest.partition(b"\0")
                s.untagged(b'LIST () "/" ' + s.mailbox_name(new.decode()) + b' ("OLDNAME" ('
                           + s.mailbox_name(old.decode()) + b"))")  # fmt: skip
            elif kind == b"D":
                s.untagged(b'LIST (\\NonExistent) "/" ' + s.mailbox_name(rest.decode()))
            elif kind in (b"S", b"U"):
                name = rest.decode()
                attrs = [b"\\Subscribed"] if kind == b"S" else []
                if name not in self.names.values():
                    attrs.append(b"\\NonExistent")  # RFC 5258 §3: subscribed, not existing
                s.untagged(b"LIST (" + b" ".join(attrs) + b') "/" ' + s.mailbox_name(name))
            elif kind == b"M":
                owner, _, entries = rest.partition(b"\0")
                mailbox = s.mailbox_name(owner.decode()) if owner else b'""'
                names = b" ".join(encoder.astring(e.decode()) for e in entries.split(b"\0"))
                s.untagged(b"METADATA " + mailbox + b" " + names)  # RFC 5464 §4.4.2
            else:
                s.untagged(b'LIST () "/" ' + s.mailbox_name(rest.decode()))
        boxes, self.status = self.status, set()
        items = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN") + (("HIGHESTMODSEQ",) if s.condstore else ())
        for box in sorted(boxes):
            mb = await s.store.get_mailbox_by_id(box)
            if mb is not None and not mb.noselect:
                s.untagged(await status_line(s, mb, items))

    async def _resync(self, s: Session) -> None:
        """After a FeedGap: LIST for the mailboxes created, renamed or deleted meanwhile (by
        comparing names), a STATUS for every mailbox with message events (counts unknown)."""
        self.gap = False
        names = {m.id: m.name for m in await s.store.list_mailboxes(s.user_id)}
        self.subscribed = set(await s.store.list_subscriptions(s.user_id))
        for box, name in sorted(names.items()):
            old = self.names.get(box)
            if old != name and "MAILBOXNAME" in self._events(name, False) and len(self.lists) < MAX_QUEUED:
                self.lists.append(b"C\0" + name.encode() if old is None else b"R\0" + name.encode() + b"\0" + old.encode())
        for box, name in sorted(self.names.items()):
            if box not in names and "MAILBOXNAME" in self._events(name, False) and len(self.lists) < MAX_QUEUED:
                self.lists.append(b"D\0" + name.encode())
        self.names = names
        selected = s.selected.id if s.selected else None
        self.status |= {b for b, n in names.items() if b != selected and "MESSAGENEW" in self._events(n, False)}

    async def initial_status(self, s: Session) -> None:
        """NOTIFY SET STATUS (§3.1): a STATUS now for every mailbox with message events."""
        for box, name in sorted(self.names.items()):
            if box != (s.selected.id if s.selected else None) and "MESSAGENEW" in self._events(name, False):
                self.status.add(box)
        await self.emit(s)
