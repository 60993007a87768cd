"""Webmail sessions: a random token in a cookie, the session itself in process memory.

A session holds the user, a CSRF token (sent back in every form as ``csrf`` and by the
script as the ``X-CSRF-Token`` header, compared in constant time on every POST), the
uploads of messages being written and the sorted UID list of the last listing. Sessions
end at logout, after ``[http] webmail_session_timeout`` seconds without a request, or when
the server restarts (they are not stored: users log in again after a restart).

URLs that a sandboxed message frame loads (the frame itself, inline images) cannot carry the
cookie (the frame's origin is opaque, so SameSite=Strict keeps it back); they carry a
capability instead: an HMAC of the mailbox, UID and an expiry under a per-process key
(:meth:`SessionTable.sign`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from array import array
from dataclasses import dataclass, field

COOKIE = "courriel_webmail"
#: A login form's own token, before any session exists (double-submit cookie).
LOGIN_COOKIE = "courriel_login"
MAX_SESSIONS = 10_000
#: Seconds a frame capability stays valid.
CAPABILITY_TTL = 12 * 3600


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
    token: str
    user_id: int
    address: str
    csrf: str
    expires: float
    uploads: dict[str, Upload] = field(default_factory=dict)
    listing: Listing | None = None
    #: The message list shows conversations (one row per thread) rather than messages.
    conversations: bool = False

    def upload_bytes(self) -> int:
        return sum(len(u.data) for u in self.uploads.values())

    def check_csrf(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(self.csrf.encode(), (value or "").encode())


class SessionTable:
    def __init__(self, timeout: int) -> None:
        self.timeout = timeout
        self._sessions: dict[str, Session] = {}
        self._key = secrets.token_bytes(32)
        self._now = time.monotonic

    def create(self, user_id: int, address: str) -> Session:
        self._expire()
        if len(self._sessions) >= MAX_SESSIONS:  # the oldest go first
            for token in sorted(self._sessions, key=lambda t: self._sessions[t].expires)[: MAX_SESSIONS // 10]:
                del self._sessions[token]
        session = Session(secrets.token_urlsafe(32), user_id, address, secrets.token_urlsafe(24),
                          self._now() + self.timeout)  # fmt: skip
        self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._now()
        if session.expires < now:
            del self._sessions[token]
            return None
        session.expires = now + self.timeout
        return session

    def alive(self, session: Session) -> bool:
        """Whether a session is still current, without counting as activity."""
        return self._sessions.get(session.token) is session and session.expires >= self._now()

    def drop(self, token: str) -> None:
        self._sessions.pop(token, None)

    def _expire(self) -> None:
        now = self._now()
        for token in [t for t, s in self._sessions.items() if s.expires < now]:
            del self._sessions[token]

    def __len__(self) -> int:
        return len(self._sessions)

    # --- capabilities for the sandboxed frame -------------------------------------------
    def sign(self, mailbox_id: int, uid: int) -> str:
        expires = int(time.time()) + CAPABILITY_TTL
        return f"{expires}.{self._mac(mailbox_id, uid, expires)}"

    def verify(self, mailbox_id: int, uid: int, capability: str | None) -> bool:
        if not capability:
            return False
        expires_s, _, mac = capability.partition(".")
        if not (expires_s.isascii() and expires_s.isdigit() and len(expires_s) < 12) or int(expires_s) < time.time():
            return False
        return hmac.compare_digest(mac, self._mac(mailbox_id, uid, int(expires_s)))

    def _mac(self, mailbox_id: int, uid: int, expires: int) -> str:
        msg = f"{mailbox_id}:{uid}:{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]
