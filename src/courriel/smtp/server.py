"""The three SMTP services registered in :data:`courriel.server.FACTORIES`.

- ``smtp``: the MX (port 25; 2525 in development). STARTTLS offered; AUTH only after TLS;
  mail accepted for local domains, remote recipients only once authenticated.
- ``submission``: port 587 (2587), RFC 6409: STARTTLS, then AUTH before MAIL.
- ``submissions``: port 465 (2465), RFC 8314: implicit TLS, AUTH before MAIL.

The protocol keys of ``[smtp]`` (recipients, timeouts, error limits) apply to all three.
"""

from __future__ import annotations

import logging

from courriel.net import Connection, Listener
from courriel.server import Context, Service
from courriel.smtp.session import Policy, Session

log = logging.getLogger("courriel.smtp")


class SmtpService:
    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx = ctx
        self.name = name
        cfg = ctx.cfg
        section = getattr(cfg, name)
        implicit_tls = name == "submissions"
        self.policy = Policy(
            name=name,
            hostname=cfg.server.hostname,
            domain=cfg.server.domain,
            auth_required=name != "smtp",
            plaintext_auth=bool(getattr(section, "allow_plaintext_auth", False)),
            max_size=cfg.limits.max_message_size,
            max_line=cfg.limits.max_line_length,
            limits=cfg.smtp,
            ssl_context=None if implicit_tls else ctx.ssl_context,
        )
        if name == "smtp":
            self._mailauth(ctx)
        if name == "smtp" and cfg.spam.enabled:
            from courriel.delivery.spam import SpamFilter

            self.policy.spam = SpamFilter(cfg.spam)
        self.listener = Listener(
            name,
            section.addresses(),
            self.handle,
            ctx.connections,
            ssl_context=ctx.ssl_context() if implicit_tls else None,
            refuse=self.refuse,
        )

    def _mailauth(self, ctx: Context) -> None:
        """The MX checks incoming mail (SPF, DKIM, DMARC) and forwards with SRS."""
        from courriel.delivery.local import Resolver
        from courriel.mailauth.inbound import InboundChecker
        from courriel.mailauth.srs import Srs
        from courriel.queue.dns import Dns

        cfg = ctx.cfg
        self.policy.srs = Srs.from_config(cfg)
        if cfg.mailauth.enabled:
            resolver = Resolver(ctx.store, self.policy.cache)
            self.policy.checker = InboundChecker(cfg.mailauth, Dns(cfg.outbound.dns), cfg.server.hostname, resolver.is_local)

    async def start(self) -> list[tuple[str, int]]:
        return await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()

    async def handle(self, conn: Connection) -> None:
        await Session(conn, self.policy, self.ctx.store, self.ctx.auth_limiter).run()

    async def refuse(self, conn: Connection, reason: str) -> None:
        conn.writer.write(f"421 4.7.0 {self.policy.hostname} {reason}, try again later\r\n".encode())
        await conn.writer.drain()


def smtp_service(ctx: Context) -> Service:
    return SmtpService(ctx, "smtp")


def submission_service(ctx: Context) -> Service:
    return SmtpService(ctx, "submission")


def submissions_service(ctx: Context) -> Service:
    return SmtpService(ctx, "submissions")
