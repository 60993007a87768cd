"""Local delivery (the MDA): recipient resolution through aliases, trace headers, INBOX delivery.

- :func:`resolve` expands one envelope recipient into local users and external addresses:
  a user is itself; otherwise its alias (or its domain's ``@domain`` catch-all) is followed,
  recursively, with loop detection and bounds on depth and fan-out. External targets go to
  the outbound queue.
- :func:`return_path` and :func:`received_header` build the trace lines (RFC 5321 §4.4)
  prepended to every stored message (queued mail gets ``Received`` only: ``Return-Path``
  belongs to the final delivery).
- :func:`deliver` stores the bytes once into every recipient's INBOX through
  :meth:`Store.deliver` (durable on return) and queues the external recipients.

Invariant: nothing here writes unless the whole resolution succeeded; delivery to the local
recipients is all-or-none (the store's ``deliver``), so a failure leaves nothing stored and the
SMTP client can retry without duplicates.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from courriel.sieve import delivery as sieve_delivery
from courriel.store.api import INBOX, QueueRecipient, Store, User

#: Alias chains deeper than this are treated as loops.
MAX_DEPTH = 10
#: Addresses one recipient may expand to.
MAX_EXPANSION = 1000


class ResolveError(Exception):
    """Why a recipient cannot be accepted; ``kind`` picks the SMTP reply."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind  # "unknown", "loop", "too-many", "disabled"


@dataclass(frozen=True, slots=True)
class LocalTarget:
    user_id: int
    address: str
    inbox_id: int
    quota_bytes: int
    quota_messages: int


@dataclass(slots=True)
class Resolution:
    local: list[LocalTarget] = field(default_factory=list)
    external: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.local and not self.external


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


class TargetCache:
    """Positive answers (a domain is local, an address is this user's INBOX) kept for ``ttl``
    seconds, shared by the sessions of a process: the hot path of a busy MX asks the same
    questions again and again. Negative answers are never cached, so a new user or domain
    is served at once; a deleted one is noticed by the store at delivery (451, retried).
    """

    def __init__(self, ttl: float = 2.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.domains: dict[str, float] = {}
        self.users: dict[str, tuple[LocalTarget, float]] = {}

    def domain(self, name: str) -> bool:
        expiry = self.domains.get(name)
        return expiry is not None and expiry > time.monotonic()

    def add_domain(self, name: str) -> None:
        if len(self.domains) >= self.max_entries:
            self.domains.clear()
        self.domains[name] = time.monotonic() + self.ttl

    def user(self, address: str) -> LocalTarget | None:
        hit = self.users.get(address.lower())
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def add_user(self, address: str, target: LocalTarget) -> None:
        if len(self.users) >= self.max_entries:
            self.users.clear()
        self.users[address.lower()] = (target, time.monotonic() + self.ttl)


class Resolver:
    """Resolves recipients against the store (through a process-wide :class:`TargetCache`)."""

    def __init__(self, store: Store, cache: TargetCache | None = None) -> None:
        self.store = store
        self.cache = cache if cache is not None else TargetCache(ttl=0.0)

    async def is_local(self, domain: str) -> bool:
        if self.cache.domain(domain):
            return True
        if domain.startswith("[") or not await self.store.is_local_domain(domain):
            return False
        self.cache.add_domain(domain)
        return True

    async def resolve(self, address: str) -> Resolution:
        """Expand ``address`` (whose domain is local) to users and external addresses.

        Raises :class:`ResolveError` when nothing deliverable is left."""
        out = Resolution()
        seen: set[str] = set()
        loop = False
        users: set[int] = set()

        async def walk(addr: str, depth: int) -> None:
            nonlocal loop
            key = addr.lower()
            if key in seen:
                loop = True
                return
            seen.add(key)
            if len(seen) > MAX_EXPANSION:
                raise ResolveError("too-many", "alias expands to too many addresses")
            domain = domain_of(addr)
            if not await self.is_local(domain):
                out.external.append(addr)
                return
            cached = self.cache.user(addr)
            if cached is not None:
                if cached.user_id not in users:
                    users.add(cached.user_id)
                    out.local.append(cached)
                return
            user = await self.store.get_user(addr)
            if user is not None:
                if not user.disabled and user.id not in users:
                    users.add(user.id)
                    found = await self._target(user)
                    self.cache.add_user(addr, found)
                    out.local.append(found)
                return
            alias = await self.store.get_alias(addr)
            if alias is None:
                alias = await self.store.get_alias("@" + domain)  # catch-all
            if alias is None:
                return
            if depth >= MAX_DEPTH:
                loop = True
                return
            for target in alias.targets:
                await walk(target, depth + 1)

        await walk(address, 0)
        if out.empty:
            if loop:
                raise ResolveError("loop", "alias loop")
            raise ResolveError("unknown", "no such user")
        return out

    async def _target(self, user: User) -> LocalTarget:
        inbox = await self.store.get_mailbox(user.id, INBOX)
        if inbox is None:
            raise ResolveError("unknown", "recipient has no INBOX")
        return LocalTarget(user.id, user.address, inbox.id, user.quota_bytes, user.quota_messages)

    async def over_quota(self, target: LocalTarget, size: int) -> bool:
        """True when ``size`` more bytes (one message) would exceed the user's quota."""
        if not target.quota_bytes and not target.quota_messages:
            return False
        usage = await self.store.usage(target.user_id)
        if target.quota_bytes and usage.bytes + size > target.quota_bytes:
            return True
        return bool(target.quota_messages and usage.messages + 1 > target.quota_messages)

    async def owns(self, user: str, address: str) -> bool:
        """Whether ``address`` belongs to ``user``: its own, or an alias (or catch-all) to it.

        Only a direct alias counts: a chain through another user's address does not."""
        user_l = user.lower()
        if address.lower() == user_l:
            return True
        domain = domain_of(address)
        if not await self.is_local(domain):
            return False
        alias = await self.store.get_alias(address)
        if alias is not None:
            return user_l in (t.lower() for t in alias.targets)
        if await self.store.get_user(address) is not None:
            return False
        catch_all = await self.store.get_alias("@" + domain)
        return catch_all is not None and user_l in (t.lower() for t in catch_all.targets)


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """What the Received line says about the SMTP session (RFC 5321 §4.4, RFC 3848)."""

    helo: str
    peer_ip: str
    hostname: str
    protocol: str  # SMTP, ESMTP, ESMTPS, ESMTPSA, UTF8SMTPSA ... (RFC 3848, RFC 6531 §3.7.3)
    queue_id: str
    tls: tuple[str, str] | None = None
    auth_user: str | None = None


def return_path(mail_from: str) -> bytes:
    """RFC 5321 §4.4: the final delivery adds the reverse path as ``Return-Path``."""
    return f"Return-Path: <{mail_from}>\r\n".encode()


def received_header(info: TraceInfo, recipients: Sequence[str]) -> bytes:
    """The ``Received`` line; its ``for`` clause only names a single recipient."""
    ip = info.peer_ip if ":" not in info.peer_ip else "IPv6:" + info.peer_ip
    lines = [
        f"Received: from {_clean(info.helo)} ([{ip}])",
        f"\tby {info.hostname} (courriel) with {info.protocol} id {info.queue_id}",
    ]
    if info.tls is not None:
        lines.append(f"\t(using {info.tls[0]} with cipher {info.tls[1]})")
    if info.auth_user is not None:
        lines.append(f"\t(authenticated as {_clean(info.auth_user)})")
    date = _date()
    if len(recipients) == 1:
        lines.append(f"\tfor <{_clean(recipients[0])}>; {date}")
    else:
        lines[-1] += ";"
        lines.append(f"\t{date}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


_date_cache: tuple[int, str] = (0, "")


def _date() -> str:
    """RFC 5322 date of the current second (computed once per second)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, localtime=True))
    return _date_cache[1]


def _clean(text: str) -> str:
    """Keep a client-supplied name from breaking the header (no controls, parentheses, spaces)."""
    return "".join(c if c.isprintable() and c not in "()\\ " else "?" for c in text)[:255]


async def deliver(
    store: Store,
    data: bytes,
    mail_from: str,
    local: Sequence[LocalTarget],
    *,
    junk: bool = False,
    hostname: str = "localhost",
) -> None:
    """Store ``data`` (trace headers included) once for the local targets: into each INBOX,
    or where the user's active Sieve script says (``courriel.sieve.delivery``); ``junk``
    (the spam filter's verdict) files the implicit keep into Junk.

    Raises ``courriel.sieve.delivery.MessageRejected`` when every script ``ereject``-ed it."""
    if not local:
        return
    await sieve_delivery.deliver(store, data, mail_from, local, junk=junk, hostname=hostname)


async def enqueue(
    store: Store,
    data: bytes,
    mail_from: str,
    recipients: Sequence[QueueRecipient],
    *,
    envid: str | None,
    ret: str | None,
    smtputf8: bool,
    body_8bit: bool,
    auth_user: str | None,
    source: str,
) -> int | None:
    if not recipients:
        return None
    return await store.enqueue(
        data, mail_from, recipients, envid=envid, ret=ret, smtputf8=smtputf8, body_8bit=body_8bit,
        auth_user=auth_user, source=source,
    )  # fmt: skip
