"""Sieve at local delivery: each recipient's active script decides where the message goes.

For every local recipient with an active script, the script runs over the message
(:mod:`courriel.sieve.interpreter`); the outcome becomes store targets (mailboxes with
flags), all stored with one :meth:`Store.deliver` (all or none), and, only after that
commit, the messages to send (redirects, vacation replies, rejection notices) are queued.

Invariant: a script never loses mail. A script that does not compile, fails while running
(RFC 5228 §2.10.6), or names a mailbox that does not exist gets the message filed into INBOX
(the implicit keep) and an error logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from courriel.sieve.grammar import SieveSyntaxError
from courriel.sieve.interpreter import FileInto, Outcome, SieveRuntimeError, evaluate
from courriel.sieve.message import Envelope, MessageView
from courriel.sieve.replies import (
    rejection_notice,
    vacation_days,
    vacation_handle,
    vacation_reply,
    vacation_skip_reason,
)
from courriel.sieve.validate import Script, compile_script
from courriel.store.api import (
    INBOX,
    AlreadyExists,
    Appended,
    AppendTarget,
    Flag,
    MessageEvent,
    QueueRecipient,
    Store,
    StoreError,
)
from courriel.trace import events

log = logging.getLogger("courriel.sieve")

_SYSTEM_FLAGS = {"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"}
_ATOM_SPECIALS = set('(){ %*"\\]') | {chr(c) for c in range(0x20)} | {"\x7f"}


class Recipient(Protocol):
    @property
    def user_id(self) -> int: ...
    @property
    def address(self) -> str: ...
    @property
    def inbox_id(self) -> int: ...


class MessageRejected(Exception):
    """Every recipient's script refused the message with ``ereject`` (RFC 5429 §2.2): the
    SMTP server answers 550 5.7.1 with the reason instead of accepting it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ScriptCache:
    """Compiled active scripts per user for ``ttl`` seconds (ManageSieve invalidates at once)."""

    def __init__(self, ttl: float = 2.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[int, tuple[Script | None, float]] = {}

    async def get(self, store: Store, user_id: int) -> Script | None:
        hit = self._entries.get(user_id)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        row = await store.get_sieve_script(user_id, None)
        script: Script | None = None
        if row is not None:
            try:
                script = compile_script(row.content)
            except SieveSyntaxError as exc:
                log.error("sieve: user %d: active script %r does not compile: %s", user_id, row.name, exc)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[user_id] = (script, now + self.ttl)
        return script

    def invalidate(self, user_id: int) -> None:
        self._entries.pop(user_id, None)


#: The process-wide cache (ManageSieve sessions invalidate it).
SCRIPTS = ScriptCache()


@dataclass(slots=True)
class _Plan:
    targets: list[AppendTarget] = field(default_factory=list)
    outgoing: list[tuple[bytes, str, str]] = field(default_factory=list)  # data, mail_from, rcpt
    ereject: str | None = None
    actions: list[str] = field(default_factory=list)  # what the script did (message events)


def _flags(names: Sequence[str]) -> tuple[Flag, frozenset[str]]:
    system = [n for n in names if n.lower() in _SYSTEM_FLAGS]
    keywords = [n for n in names if not n.startswith("\\") and n and not (set(n) & _ATOM_SPECIALS) and len(n) <= 255]
    flags, _ = Flag.parse(system)
    return flags, frozenset(keywords)


def _strip_return_path(data: bytes) -> bytes:
    if data[:12].lower() == b"return-path:":
        end = data.find(b"\r\n")
        return data[end + 2 :] if end >= 0 else data
    return data


async def _plan(
    store: Store, rcpt: Recipient, data: bytes, mail_from: str, script: Script, junk: bool, hostname: str
) -> _Plan:
    plan = _Plan()
    fallback = AppendTarget(rcpt.inbox_id)
    known: dict[str, int] = {}
    if junk or "mailbox" in script.extensions or "fileinto" in script.extensions:
        known = {m.name: m.id for m in await store.list_mailboxes(rcpt.user_id) if not m.noselect}
    msg = MessageView(data)
    env = Envelope(mail_from, rcpt.address, rcpt.address)

    def exists(name: str) -> bool:
        return name in known or (name.upper() == INBOX and INBOX in known)

    try:
        out: Outcome = evaluate(script, data, env, exists)
    except SieveRuntimeError as exc:
        log.error("sieve: %s: script failed, message kept in INBOX: %s", rcpt.address, exc)
        plan.targets.append(fallback)
        plan.actions.append("keep (script failed)")
        return plan
    plan.actions += ["keep" if f.mailbox.upper() == INBOX else f"fileinto {f.mailbox}" for f in out.fileinto]
    if out.implicit_keep:
        plan.actions.append("keep")
    plan.actions += [f"redirect {a}" for a in out.redirects]
    if out.discarded:
        plan.actions.append("discard")
    if out.reject is not None:
        plan.actions.append("ereject" if out.ereject else "reject")
    for item in out.fileinto:
        plan.targets.append(await _target(store, rcpt, item, known))
    if out.implicit_keep:
        keep = FileInto("Junk" if junk else INBOX, out.keep_flags)
        if keep.mailbox not in (f.mailbox for f in out.fileinto):
            plan.targets.append(await _target(store, rcpt, keep, known))
    body = _strip_return_path(data)
    for address in out.redirects:
        if address.lower() == rcpt.address.lower():
            # Redirecting to oneself would loop; the message is kept instead.
            log.error("sieve: %s: redirect to the script's own address refused; kept in INBOX", rcpt.address)
            plan.targets.append(await _target(store, rcpt, FileInto(INBOX, out.keep_flags), known))
            continue
        plan.outgoing.append((body, mail_from, address))
    if out.reject is not None:
        if out.ereject:
            plan.ereject = out.reject
        elif mail_from:
            plan.outgoing.append((rejection_notice(body, mail_from, rcpt.address, out.reject, hostname), "", mail_from))
    if out.vacation is not None:
        reason = vacation_skip_reason(msg, mail_from, rcpt.address, out.vacation)
        if reason is not None:
            log.info("sieve: %s: no vacation reply to %s: %s", rcpt.address, mail_from or "<>", reason)
            plan.actions.append(f"vacation (no reply: {reason})")
        elif await store.vacation_due(
            rcpt.user_id, vacation_handle(out.vacation), mail_from, vacation_days(out.vacation) * 86400
        ):
            reply = vacation_reply(msg, mail_from, rcpt.address, out.vacation, hostname)
            plan.outgoing.append((reply, "", mail_from))  # RFC 5230 §5.1: null envelope sender
            plan.actions.append("vacation")
        else:
            plan.actions.append("vacation (already replied)")
    log.info(
        "sieve: %s: fileinto=%s keep=%s redirect=%d reject=%s vacation=%s",
        rcpt.address, [f.mailbox for f in out.fileinto], out.implicit_keep, len(out.redirects),
        out.reject is not None, out.vacation is not None,
    )  # fmt: skip
    return plan


async def _target(store: Store, rcpt: Recipient, item: FileInto, known: dict[str, int]) -> AppendTarget:
    flags, keywords = _flags(item.flags)
    name = INBOX if item.mailbox.upper() == INBOX else item.mailbox
    if name == INBOX:
        return AppendTarget(rcpt.inbox_id, flags, keywords)
    mailbox_id = known.get(name)
    if mailbox_id is None and item.create:
        # RFC 5490 §3.2: :create makes the mailbox (and its parents) when missing.
        try:
            mailbox_id = (await store.create_mailbox(rcpt.user_id, name)).id
            await store.subscribe(rcpt.user_id, name)
        except AlreadyExists:
            box = await store.get_mailbox(rcpt.user_id, name)
            mailbox_id = box.id if box is not None else None
        except StoreError as exc:
            log.error("sieve: %s: cannot create %r: %s", rcpt.address, name, exc)
    if mailbox_id is None:
        log.error("sieve: %s: fileinto %r: no such mailbox, filed into INBOX", rcpt.address, name)
        return AppendTarget(rcpt.inbox_id, flags, keywords)
    known[name] = mailbox_id
    return AppendTarget(mailbox_id, flags, keywords)


async def deliver(
    store: Store,
    data: bytes,
    mail_from: str,
    local: Sequence[Recipient],
    *,
    junk: bool = False,
    hostname: str = "localhost",
    cache: ScriptCache = SCRIPTS,
) -> None:
    """Store ``data`` for each recipient as its script says (INBOX, or Junk when ``junk``
    and nothing else decided), then queue what the scripts send.

    Raises :class:`MessageRejected` when every recipient ``ereject``-ed it (nothing stored)."""
    targets: list[AppendTarget] = []
    outgoing: list[tuple[bytes, str, str]] = []
    erejects: list[tuple[str, str]] = []  # (recipient, reason)
    decided: list[tuple[int, list[int], list[str]]] = []  # (user, mailbox ids, actions): message events
    for rcpt in local:
        script = await cache.get(store, rcpt.user_id)
        if script is None:
            targets.append(await _junk_or_inbox(store, rcpt, junk))
            decided.append((rcpt.user_id, [targets[-1].mailbox_id], ["keep (no Sieve script)"]))
            continue
        try:
            plan = await _plan(store, rcpt, data, mail_from, script, junk, hostname)
        except StoreError as exc:
            log.error("sieve: %s: %s; message kept in INBOX", rcpt.address, exc)
            plan = _Plan([AppendTarget(rcpt.inbox_id)], actions=["keep (script failed)"])
        decided.append((rcpt.user_id, [t.mailbox_id for t in plan.targets], plan.actions))
        targets += plan.targets
        outgoing += plan.outgoing
        if plan.ereject is not None:
            erejects.append((rcpt.address, plan.ereject))
    if erejects and len(erejects) == len(local) and not targets:
        raise MessageRejected(erejects[0][1])
    for address, reason in erejects if targets else ():
        # Others took the message, so it cannot be refused in SMTP: a notice instead (RFC 5429 §2.2).
        if mail_from:
            body = rejection_notice(_strip_return_path(data), mail_from, address, reason, hostname)
            outgoing.append((body, "", mail_from))
    if targets:
        appended = await store.deliver(data, _dedupe(targets), mail_from=mail_from or None)
        if events.RECORD:  # after the commit, in the background: informative, not acknowledged
            events.write_later_from(store, _delivered_events(store, appended, decided, junk))
    for body, sender, rcpt_to in outgoing:
        try:
            await store.enqueue(body, sender, [QueueRecipient(rcpt_to)], source="sieve")
        except StoreError as exc:
            log.error("sieve: queueing a message to %s failed: %s", rcpt_to, exc)


async def _delivered_events(
    store: Store, appended: Sequence[Appended], decided: Sequence[tuple[int, list[int], list[str]]], junk: bool
) -> list[MessageEvent]:
    """One "delivered" event per recipient that got a copy: its mailboxes and Sieve actions."""
    content = {a.mailbox_id: a.content_id for a in appended}
    names: dict[int, str] = {}
    out = []
    for user_id, mailbox_ids, actions in decided:
        stored = [m for m in dict.fromkeys(mailbox_ids) if m in content]
        if not stored:
            continue  # discarded, redirected or rejected: no copy to tell about
        for m in stored:
            if m not in names:
                box = await store.get_mailbox_by_id(m)
                names[m] = box.name if box is not None else f"#{m}"
        out.append(events.delivered(
            user_id, content[stored[0]], protocol="", client="",
            mailboxes=[names[m] for m in stored], actions=actions, junk=junk,
        ))  # fmt: skip
    return out


def _dedupe(targets: list[AppendTarget]) -> list[AppendTarget]:
    seen: dict[int, AppendTarget] = {}
    for t in targets:
        prev = seen.get(t.mailbox_id)
        seen[t.mailbox_id] = t if prev is None else AppendTarget(t.mailbox_id, prev.flags | t.flags, prev.keywords | t.keywords)
    return list(seen.values())


async def _junk_or_inbox(store: Store, rcpt: Recipient, junk: bool) -> AppendTarget:
    if junk:
        box = await store.get_mailbox(rcpt.user_id, "Junk")
        if box is not None and not box.noselect:
            return AppendTarget(box.id)
    return AppendTarget(rcpt.inbox_id)
