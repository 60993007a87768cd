"""The ``imap`` (STARTTLS, 143 / 1143) and ``imaps`` (implicit TLS, 993 / 1993) services."""

from __future__ import annotations

import logging
from collections import Counter
from weakref import WeakKeyDictionary

from courriel.auth.sasl import MECHANISMS
from courriel.imap.commands import TABLE
from courriel.imap.session import Session
from courriel.net import Connection, Listener
from courriel.server import Context
from courriel.store.api import Store

log = logging.getLogger("courriel.imap")

#: Sessions per user, shared by the imap and imaps listeners of one process.
_USERS: WeakKeyDictionary[Store, Counter[int]] = WeakKeyDictionary()


class ImapSettings:
    """What sessions of one listener share: configuration, limits and the per-user count."""

    def __init__(self, ctx: Context, starttls: bool) -> None:
        cfg = ctx.cfg
        self.ctx = ctx
        self.starttls = starttls
        self.allow_plaintext_auth = cfg.imap.allow_plaintext_auth
        self.idle_timeout = float(cfg.imap.idle_timeout)
        self.login_timeout = float(cfg.imap.login_timeout)
        self.max_line_length = cfg.imap.max_line_length
        self.max_message_size = cfg.limits.max_message_size
        self.max_connections_per_user = cfg.imap.max_connections_per_user
        self.mechanisms = MECHANISMS
        self.base_capabilities = (
            "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE", "UNSELECT", "CHILDREN",
            "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE", "UIDPLUS", "MOVE",
            "ESEARCH", "SEARCHRES", "BINARY", "STATUS=SIZE", f"APPENDLIMIT={self.max_message_size}",
            "CONDSTORE", "QRESYNC", "SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES",
            "MULTIAPPEND", "UTF8=ACCEPT", "QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "SAVEDATE",
            "OBJECTID", "PREVIEW", "METADATA", "METADATA-SERVER", "NOTIFY",
        )  # fmt: skip
        self.users = _USERS.setdefault(ctx.store, Counter())

    def claim_user(self, session: Session, user_id: int) -> bool:
        """Count a session for ``user_id``; False when the user already has too many."""
        if self.users[user_id] >= self.max_connections_per_user:
            return False
        self.users[user_id] += 1
        session._counted = True
        return True

    def release_user(self, session: Session) -> None:
        if session._counted:
            session._counted = False
            self.users[session.user_id] -= 1
            if self.users[session.user_id] <= 0:
                del self.users[session.user_id]


class ImapService:
    def __init__(self, ctx: Context, name: str, implicit_tls: bool) -> None:
        self.name = name
        self.settings = ImapSettings(ctx, starttls=not implicit_tls)
        section = ctx.cfg.listeners()[name]
        self.listener = Listener(
            name,
            section.addresses(),
            self.handle,
            ctx.connections,
            ssl_context=ctx.ssl_context() if implicit_tls else None,
            refuse=self._refuse,
            read_limit=ctx.cfg.imap.max_line_length,
        )

    async def handle(self, conn: Connection) -> None:
        await Session(conn, self.settings, TABLE).run()

    @staticmethod
    async def _refuse(conn: Connection, reason: str) -> None:
        conn.writer.write(f"* BYE [UNAVAILABLE] {reason}\r\n".encode())
        await conn.writer.drain()

    async def start(self) -> list[tuple[str, int]]:
        return await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()


def imap_service(ctx: Context) -> ImapService:
    return ImapService(ctx, "imap", implicit_tls=False)


def imaps_service(ctx: Context) -> ImapService:
    return ImapService(ctx, "imaps", implicit_tls=True)
