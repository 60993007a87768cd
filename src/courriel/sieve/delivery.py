"""Sieve at local delivery: each recipient's active script decides where the message goes.

For every local recipient with an active script, the script runs over the message
(:mod:`courriel.sieve.interpreter`); the outcome becomes store targets (mailboxes with
flags), all stored with one :meth:`Store.deliver` (all or none), and, only after that
commit, the messages to send (redirects, vacation replies, rejection notices) are queued.

The JMAP VacationResponse (:mod:`courriel.jmap.vacation`) is a system script,
:data:`VACATION_SCRIPT`, kept beside the user's scripts and never active: when it holds a
vacation action, it runs first with only that action honoured, through the same vacation
rules and :days tracking as a script's own; the active script then files the message as
it would without it. One reply per message: when both issue a vacation, the JMAP one goes.
Scripts are read from the store at every delivery (only compiling is cached), so a change
from ManageSieve or JMAP on any node applies to the next message.

Invariant: a script never loses mail. A script that does not compile, fails while running
(RFC 5228 §2.10.6), or names a mailbox that does not exist gets the message filed into INBOX
(the implicit keep) and an error logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from courriel.sieve.grammar import Node, SieveSyntaxError
from courriel.sieve.interpreter import FileInto, Outcome, SieveRuntimeError, Vacation, evaluate
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
    SieveScript,
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


#: The reserved name of the JMAP VacationResponse's script (courriel.jmap.vacation): a system
#: script kept beside the user's own, never the active one; ManageSieve refuses to write it.
VACATION_SCRIPT = "jmap-vacation"


@dataclass(frozen=True, slots=True)
class UserScripts:
    """What delivery runs for one user: the active script, and the JMAP vacation's script when
    it has a vacation action (a disabled VacationResponse keeps its script without one)."""

    active: Script | None
    vacation: Script | None


def _has_vacation(nodes: Sequence[Node]) -> bool:
    return any(n.name == "vacation" or _has_vacation(n.block or ()) for n in nodes)


class ScriptCache:
    """Compiled scripts by their text. The texts themselves are read from the store at every
    delivery (one query: the active script and the vacation script), so a change made on any
    node (ManageSieve, JMAP) applies to the very next message; only compiling is saved."""

    def __init__(self, max_entries: int = 2_000, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._bytes = 0
        self._compiled: dict[bytes, tuple[Script | None, bool]] = {}

    async def get(self, store: Store, user_id: int) -> UserScripts:
        active, vacation = await store.delivery_sieve_scripts(user_id, VACATION_SCRIPT)
        if active is not None and active.name == VACATION_SCRIPT:
            active = None  # never the active one (a draft of this feature made it so): run as the vacation
        away = self._compile(user_id, vacation) if vacation is not None else None
        return UserScripts(
            self._compile(user_id, active)[0] if active is not None else None,
            away[0] if away is not None and away[1] else None,
        )

    def _compile(self, user_id: int, row: SieveScript) -> tuple[Script | None, bool]:
        """(the compiled script or None when it does not compile, whether it has a vacation)."""
        key = hashlib.blake2b(row.content.encode("utf-8", "surrogateescape"), digest_size=20).digest()
        hit = self._compiled.get(key)
        if hit is not None:
            return hit
        script: Script | None = None
        try:
            script = compile_script(row.content)
        except SieveSyntaxError as exc:
            log.error("sieve: user %d: script %r does not compile: %s", user_id, row.name, exc)
        entry = (script, script is not None and _has_vacation(script.commands))
        size = len(row.content)
        if len(self._compiled) >= self.max_entries or self._bytes + size > self.max_bytes:
            self._compiled.clear()
            self._bytes = 0
        self._compiled[key] = entry
        self._bytes += size
        return entry


#: The process-wide cache of compiled scripts.
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


def _away(rcpt: Recipient, data: bytes, env: Envelope, scripts: UserScripts, junk: bool) -> Vacation | None:
    """The JMAP vacation's reply to consider: its script runs with only its vacation action
    honoured (it holds nothing else but ``require`` and date tests; its implicit keep is not
    one). Mail the spam filter judged junk gets none (no backscatter to forged senders)."""
    if scripts.vacation is None or junk:
        return None
    try:
        return evaluate(scripts.vacation, data, env).vacation
    except SieveRuntimeError as exc:
        log.error("sieve: %s: the vacation script failed: %s", rcpt.address, exc)
        return None


async def _plan(
    store: Store, rcpt: Recipient, data: bytes, mail_from: str, scripts: UserScripts, junk: bool, hostname: str
) -> _Plan:
    """Where the message goes for ``rcpt`` and what is sent: the JMAP vacation first (a reply
    at most), then the active script (or the implicit keep) for filing, unchanged by it."""
    plan = _Plan()
    msg = MessageView(data)
    env = Envelope(mail_from, rcpt.address, rcpt.address)
    away = _away(rcpt, data, env, scripts, junk)
    own: Vacation | None = None
    if scripts.active is None:
        plan.targets.append(await _junk_or_inbox(store, rcpt, junk))
        plan.actions.append("keep (no Sieve script)")
    else:
        out = await _run_own(store, rcpt, data, mail_from, env, scripts.active, junk, hostname, plan)
        if out is not None:
            own = out.vacation
            if out.reject is not None:
                away = None  # refused mail gets the notice, not an auto-reply too (RFC 5429 §2.1)
    if away is not None and own is not None:
        # One reply per message: the JMAP VacationResponse wins over the script's own vacation.
        log.info("sieve: %s: the script's vacation is superseded by the JMAP vacation", rcpt.address)
        plan.actions.append("vacation (the script's own: superseded by the JMAP vacation)")
    if away is not None:
        await _vacation(store, rcpt, msg, mail_from, away, hostname, plan, "vacation (JMAP)")
    elif own is not None:
        await _vacation(store, rcpt, msg, mail_from, own, hostname, plan, "vacation")
    return plan


async def _vacation(
    store: Store, rcpt: Recipient, msg: MessageView, mail_from: str, vacation: Vacation, hostname: str,
    plan: _Plan, label: str,
) -> None:  # fmt: skip
    """RFC 5230 §4.5-4.6 and §5: the rules, the :days tracking, then the reply."""
    reason = vacation_skip_reason(msg, mail_from, rcpt.address, vacation)
    if reason is not None:
        log.info("sieve: %s: no vacation reply to %s: %s", rcpt.address, mail_from or "<>", reason)
        plan.actions.append(f"{label} (no reply: {reason})")
    elif await store.vacation_due(rcpt.user_id, vacation_handle(vacation), mail_from, vacation_days(vacation) * 86400):
        reply = vacation_reply(msg, mail_from, rcpt.address, vacation, hostname)
        plan.outgoing.append((reply, "", mail_from))  # RFC 5230 §5.1: null envelope sender
        plan.actions.append(label)
    else:
        plan.actions.append(f"{label} (already replied)")


async def _run_own(
    store: Store, rcpt: Recipient, data: bytes, mail_from: str, env: Envelope, script: Script, junk: bool,
    hostname: str, plan: _Plan,
) -> Outcome | None:  # fmt: skip
    """Run the user's active script into ``plan`` (targets, redirects, rejection; its vacation
    is returned in the outcome for :func:`_plan`). None when it failed: kept in INBOX."""
    fallback = AppendTarget(rcpt.inbox_id)
    known: dict[str, int] = {}
    if junk or "mailbox" in script.extensions or "fileinto" in script.extensions:
        known = {m.name: m.id for m in await store.list_mailboxes(rcpt.user_id) if not m.noselect}

    def exists(name: str) -> bool:
        return name in known or (name.upper() == INBOX and INBOX in known)

    try:
        out: Outcome = evaluate(script, data, env, exists)
    except SieveRuntimeError as exc:
        log.error("sieve: %s: script failed, message kept in INBOX: %s", rcpt.address, exc)
        plan.targets.append(fallback)
        plan.actions.append("keep (script failed)")
        return None
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
    log.info(
        "sieve: %s: fileinto=%s keep=%s redirect=%d reject=%s vacation=%s",
        rcpt.address, [f.mailbox for f in out.fileinto], out.implicit_keep, len(out.redirects),
        out.reject is not None, out.vacation is not None,
    )  # fmt: skip
    return out


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
        scripts = await cache.get(store, rcpt.user_id)
        if scripts.active is None and scripts.vacation is None:
            targets.append(await _junk_or_inbox(store, rcpt, junk))
            decided.append((rcpt.user_id, [targets[-1].mailbox_id], ["keep (no Sieve script)"]))
            continue
        try:
            plan = await _plan(store, rcpt, data, mail_from, scripts, junk, hostname)
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
