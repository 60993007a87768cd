"""Webmail sessions: a random token in a cookie, the session in the store, a cache here.

The store is the truth (``Store.add_web_session`` and friends; table ``web_sessions``): it
keeps the SHA-256 of the token (never the token), the user, the times, the CSRF secret, the
client address and user agent. So a session survives a restart of the server and works on
every node of one PostgreSQL store. This process keeps a cache of the sessions in use, with
what never needs to be shared (uploads of messages being written, the UID list of the last
listing: re-created when missing), and goes back to the store for a session it has not
checked for ``RECHECK`` seconds: a logout on another node, a password change (``courriel
user passwd`` ends every session of the user, in the store's own transaction), a deleted or
disabled user are seen within that delay.

A session ends at logout, after ``[http] webmail_session_timeout`` seconds without a
request, ``[http] webmail_session_max_age`` seconds after its login however active, on a
password change and with its user. Activity is recorded here and written to the store in
batches (:meth:`SessionTable.flush`, every ``TOUCH_SECONDS`` and at shutdown), never a write
per request; a node that reads another's session takes the later of the two times.

URLs that a sandboxed message frame loads (the frame itself, inline images) cannot carry the
cookie (the frame's origin is opaque, so SameSite=Strict keeps it back); they carry a
capability instead: the session id, an expiry and an HMAC of them with the mailbox and UID,
under a key derived from the session's secret (:meth:`SessionTable.sign`; the page's CSRF
token is derived from it too, and neither gives the other away). It is valid on every node
and ends with its session; the reader also checks that the message is the session user's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import secrets
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from courriel.store.api import Store, WebSession

log = logging.getLogger("courriel.webmail")

COOKIE = "courriel_webmail"
#: A login form's own token, before any session exists (double-submit cookie).
LOGIN_COOKIE = "courriel_login"
#: Sessions kept in this process's cache (the least recently used go first; they stay in
#: the store and come back on their next request).
MAX_CACHED = 10_000
#: Seconds a cached session is trusted before the store is asked again.
RECHECK = 3.0
#: Seconds between two batched writes of last-seen times.
TOUCH_SECONDS = 60.0
#: Seconds a frame capability stays valid (never beyond its session).
CAPABILITY_TTL = 12 * 3600
#: Longest cookie value considered (ours are 43 characters).
MAX_TOKEN = 256
MAX_USER_AGENT = 256


@dataclass
class Upload:
    id: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Listing:
    """The UIDs of one mailbox view in display order, valid while the mailbox is unchanged."""

    key: tuple[object, ...]
    uids: array[int]


@dataclass
class ThreadListing:
    """A folder's threads in display order (ids, the UIDs of each, the latest of each), valid
    while the mailbox has the same ``key`` (see :class:`courriel.webmail.threads.ThreadCache`)."""

    key: tuple[object, ...]
    order: list[str]
    uids: list[array[int]]
    latest: array[int]  # the UID of each thread's latest message


@dataclass
class Session:
    id: int
    token_hash: bytes
    user_id: int
    address: str
    #: The session's secret (stored): the CSRF token and the frame key derive from it, so a
    #: page's token gives away neither the secret nor the key.
    secret: str
    created: float
    last_seen: float
    expires: float  # end of the maximum lifetime (Unix time)
    client_ip: str = ""
    user_agent: str = ""
    checked: float = 0.0  # when the store last confirmed it
    uploads: dict[str, Upload] = field(default_factory=dict)
    listing: Listing | None = None
    #: The message list shows conversations (one row per thread) rather than messages.
    conversations: bool = False
    #: What this session already recorded as retrieved (courriel.webmail.retrievals).
    retrieved: set[tuple[int, str]] = field(default_factory=set)
    #: The token of every form (``csrf``) and of ``X-CSRF-Token``.
    csrf: str = field(init=False)

    def __post_init__(self) -> None:
        self.csrf = hmac.new(self.secret.encode(), b"courriel webmail csrf", hashlib.sha256).hexdigest()

    def upload_bytes(self) -> int:
        return sum(len(u.data) for u in self.uploads.values())

    def check_csrf(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(self.csrf.encode(), (value or "").encode())

    def frame_key(self) -> bytes:
        return hmac.new(self.secret.encode(), b"courriel webmail frame capability", hashlib.sha256).digest()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SessionTable:
    """The sessions of this process: the store's rows, cached (see the module comment)."""

    def __init__(self, store: Store, timeout: int, max_age: int, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.timeout = timeout
        self.max_age = max_age
        self._now = clock
        self._cache: dict[bytes, Session] = {}  # token hash -> session, least recently used first
        self._by_id: dict[int, Session] = {}
        self._touched: dict[int, float] = {}  # session id -> last seen, not yet written

    # --- the session of a request ---------------------------------------------------------
    async def create(self, user_id: int, address: str, client_ip: str = "", user_agent: str = "") -> tuple[Session, str]:
        """A new session, stored (durable) before it is returned with its token."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        row = await self.store.add_web_session(
            user_id, token_hash(token), secrets.token_urlsafe(24), now, now + self.max_age,
            client_ip, user_agent[:MAX_USER_AGENT],
        )  # fmt: skip
        return self._remember(row, address, now), token

    async def get(self, token: str | None) -> Session | None:
        """The current session of a cookie's token (counts as activity), or None."""
        if not token or len(token) > MAX_TOKEN:
            return None
        key = token_hash(token)
        now = self._now()
        session = self._cache.get(key)
        if session is None or now - session.checked >= RECHECK or not self._current(session, now):
            session = await self._reload(key, session, now)
            if session is None:
                return None
        self._cache[key] = self._cache.pop(key, session)  # most recently used last
        session.last_seen = now
        self._touched[session.id] = now
        return session

    async def alive(self, session: Session) -> bool:
        """Whether a session is still current (asking the store when due), not activity."""
        now = self._now()
        if self._cache.get(session.token_hash) is session and now - session.checked < RECHECK:
            return self._current(session, now)
        return await self._reload(session.token_hash, session, now) is session

    async def drop(self, session: Session) -> None:
        """Logout: the session ends in the store and here."""
        self._forget(session)
        await self.store.delete_web_session(session.id)

    async def sessions_of(self, user_id: int) -> list[WebSession]:
        """The user's current sessions (for the sessions page), latest activity first; this
        process's activity not yet written counts."""
        now = self._now()
        out = []
        for row in await self.store.list_web_sessions(user_id):
            cached = self._by_id.get(row.id)
            seen = max(row.last_seen, cached.last_seen if cached is not None else 0.0)
            if now <= row.expires and now <= seen + self.timeout:
                out.append(dataclasses.replace(row, last_seen=seen))
        return sorted(out, key=lambda r: (-r.last_seen, -r.id))

    async def end(self, user_id: int, session_id: int) -> bool:
        """End one of the user's sessions (another device); False when it is not theirs."""
        if session_id not in {r.id for r in await self.store.list_web_sessions(user_id)}:
            return False
        cached = self._by_id.get(session_id)
        if cached is not None:
            self._forget(cached)
        await self.store.delete_web_session(session_id)
        return True

    def _current(self, session: Session, now: float) -> bool:
        return now <= session.expires and now <= session.last_seen + self.timeout

    async def _reload(self, key: bytes, cached: Session | None, now: float) -> Session | None:
        try:
            row = await self.store.web_session(key)
        except Exception as exc:  # the store is unreachable: a current cached session goes on
            if cached is None or not self._current(cached, now) or self._cache.get(key) is not cached:
                raise
            log.warning("webmail: session %d not checked against the store: %s", cached.id, exc)
            return cached
        return await self._checked(row, key, cached, now)

    async def _checked(self, row: WebSession | None, key: bytes, cached: Session | None, now: float) -> Session | None:
        cached = self._cache.get(key, cached)  # another request may have loaded it meanwhile
        if row is None or (cached is not None and cached.id != row.id):
            if cached is not None:
                self._forget(cached)
            if row is None:
                return None
            cached = None
        if cached is None:
            user = await self.store.get_user_by_id(row.user_id)
            if user is None:
                return None
            cached = self._remember(row, user.address, now)
        cached.checked = now
        cached.last_seen = max(cached.last_seen, row.last_seen)  # another node's activity
        cached.expires = row.expires
        if self._cache.get(key) is not cached:  # left the cache meanwhile (least recently used)
            self._cache[key] = cached
            self._by_id[cached.id] = cached
        if not self._current(cached, now):
            self._forget(cached)
            return None
        return cached

    def _remember(self, row: WebSession, address: str, now: float) -> Session:
        if len(self._cache) >= MAX_CACHED:
            for key in list(self._cache)[: MAX_CACHED // 10]:  # the least recently used
                self._forget(self._cache[key], keep_touch=True)
        session = Session(row.id, row.token_hash, row.user_id, address, row.secret, row.created, row.last_seen,
                          row.expires, row.client_ip, row.user_agent, checked=now)  # fmt: skip
        self._cache[row.token_hash] = session
        self._by_id[row.id] = session
        return session

    def _forget(self, session: Session, keep_touch: bool = False) -> None:
        if self._cache.get(session.token_hash) is session:
            del self._cache[session.token_hash]
        if self._by_id.get(session.id) is session:
            del self._by_id[session.id]
        if not keep_touch:
            self._touched.pop(session.id, None)

    def __len__(self) -> int:
        return len(self._cache)

    # --- batched writes, cleaning ----------------------------------------------------------
    async def flush(self) -> None:
        """Write the last-seen times gathered since the previous flush, in one batch."""
        batch, self._touched = self._touched, {}
        if not batch:
            return
        try:
            await self.store.touch_web_sessions(sorted(batch.items()))
        except Exception as exc:  # informative: the session goes on; the next flush retries
            log.warning("webmail: last-seen times of %d sessions not written: %s", len(batch), exc)
            for sid, seen in batch.items():
                self._touched[sid] = max(seen, self._touched.get(sid, 0.0))

    async def prune(self) -> int:
        """End the sessions past their idle timeout or lifetime, here and in the store."""
        now = self._now()
        for session in [s for s in self._cache.values() if not self._current(s, now)]:
            self._forget(session)
        return await self.store.prune_web_sessions(now - self.timeout, now)

    # --- capabilities for the sandboxed frame -------------------------------------------
    def sign(self, session: Session, mailbox_id: int, uid: int) -> str:
        expires = int(min(self._now() + CAPABILITY_TTL, session.expires))
        return f"{session.id}.{expires}.{self._mac(session, mailbox_id, uid, expires)}"

    async def verify(self, mailbox_id: int, uid: int, capability: str | None) -> Session | None:
        """The session a capability for this message was signed for, when both are valid."""
        if not capability or len(capability) > 100:
            return None
        sid_s, _, rest = capability.partition(".")
        expires_s, _, mac = rest.partition(".")
        for n in (sid_s, expires_s):
            if not (n.isascii() and n.isdigit() and len(n) < 19):
                return None
        now = self._now()
        if int(expires_s) < now:
            return None
        session = self._by_id.get(int(sid_s))
        if session is None or now - session.checked >= RECHECK or not self._current(session, now):
            row = await self.store.web_session_by_id(int(sid_s))
            key = row.token_hash if row is not None else (session.token_hash if session else b"")
            session = await self._checked(row, key, session, now)
        if session is None or not hmac.compare_digest(mac, self._mac(session, mailbox_id, uid, int(expires_s))):
            return None
        return session

    @staticmethod
    def _mac(session: Session, mailbox_id: int, uid: int, expires: int) -> str:
        msg = f"{session.id}:{mailbox_id}:{uid}:{expires}".encode()
        return hmac.new(session.frame_key(), msg, hashlib.sha256).hexdigest()[:32]
