"""The outbound service: takes due recipients from the queue, delivers them, records results.

Invariants:
- The queue in the store is the only state: a recipient is ``delivered`` or ``failed`` only
  once its outcome is committed, right after each message's conversation, so a kill -9
  loses nothing and resends only what was in flight at that instant.
- Recipients of one message are grouped by domain; the messages of one destination share a
  connection (up to ``max_per_connection``), with at most ``max_per_domain`` connections per
  destination and ``max_connections`` in total.
- 4xx replies, lost connections and DNS trouble are retried with exponential backoff
  (``retry_base`` doubling up to ``retry_max``) until ``lifetime``; 5xx is final.
- Failures (and expiry) are reported to the envelope sender with a DSN (:mod:`.dsn`),
  delays once after ``delay_warning``, successes when NOTIFY=SUCCESS asks and the next hop
  did not take the DSN request on; never to the null sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from courriel import metrics
from courriel.config import OutboundSection
from courriel.delivery.local import Resolver, domain_of
from courriel.mailauth.dkim import DkimSigner
from courriel.mailauth.srs import Srs
from courriel.queue import dsn
from courriel.queue.client import Envelope, Outcome, Reply, SmtpClient, SmtpClientError
from courriel.queue.dns import Dns
from courriel.queue.mtasts import MtaSts, Policy
from courriel.queue.routing import Hop, Route, RouteError, route
from courriel.queue.tlsrpt import Outcome as TlsOutcome
from courriel.queue.tlsrpt import TlsRecorder, TlsReporter, classify_tls_error
from courriel.server import Context
from courriel.store.api import (
    AppendTarget,
    MessageEvent,
    QueuedMessage,
    QueuedRecipient,
    QueueRecipient,
    RecipientUpdate,
)
from courriel.trace import events

log = logging.getLogger("courriel.outbound")


@dataclass(slots=True)
class Job:
    msg: QueuedMessage
    rcpts: list[QueuedRecipient]


def _wants(notify: str | None, what: str) -> bool:
    """RFC 3461 §4.1: no NOTIFY means failures (and delays, our choice); NEVER means none."""
    if notify is None:
        return what in ("FAILURE", "DELAY")
    return what in notify.upper().split(",")


class Outbound:
    name = "outbound"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cfg: OutboundSection = ctx.cfg.outbound
        self.store = ctx.store
        self.dns = Dns(self.cfg.dns)
        self.hostname = self.cfg.helo or ctx.cfg.server.hostname
        self.signer = DkimSigner(ctx.cfg.path(self.cfg.dkim_dir))
        self.srs = Srs.from_config(ctx.cfg)
        self.resolver = Resolver(self.store)
        self.total = asyncio.Semaphore(self.cfg.max_connections)
        self.per_domain: dict[str, int] = defaultdict(int)
        self.busy: set[int] = set()  # recipient ids being worked on
        self.tasks: set[asyncio.Task[None]] = set()
        self.runner: asyncio.Task[None] | None = None
        self.tls_contexts: dict[bool, ssl.SSLContext] = {}
        # MTA-STS (RFC 8461) and TLS reports (RFC 8460): see the _sts_* methods.
        self.mta_sts = (
            MtaSts(self.dns, ctx.cfg.path("mta-sts"), self.cfg.mta_sts_ca_bundle, self.cfg.mta_sts_port)
            if self.cfg.mta_sts else None
        )  # fmt: skip
        self.tls_recorder = TlsRecorder(ctx.cfg.path("tlsrpt"), self.cfg.tlsrpt_period)
        self.reporter: asyncio.Task[None] | None = None
        self._sts_ssl: ssl.SSLContext | None = None

    # --- service -------------------------------------------------------------------------
    async def start(self) -> list[tuple[str, int]]:
        self.runner = asyncio.create_task(self._loop(), name="outbound")
        if self.mta_sts is not None and self.cfg.tlsrpt:
            reporter = TlsReporter(self.tls_recorder, self.dns, self._enqueue_report, self.hostname,
                                   f"postmaster@{self.ctx.cfg.server.domain}", self.cfg.mta_sts_ca_bundle)  # fmt: skip
            self.reporter = asyncio.create_task(reporter.run(), name="tlsrpt")
        return []

    async def stop(self) -> None:
        tasks = [t for t in (self.runner, self.reporter, *self.tasks) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("outbound: queue run failed")
            await asyncio.sleep(self.cfg.poll_ms / 1000)

    async def run_once(self) -> None:
        """Start deliveries for every due recipient not already in progress."""
        due = await self.store.due_queue(datetime.now(UTC), limit=2000)
        by_domain: dict[str, list[Job]] = defaultdict(list)
        now = datetime.now(UTC)
        for msg in due:
            groups: dict[str, list[QueuedRecipient]] = defaultdict(list)
            for r in msg.recipients:
                if r.state in ("queued", "deferred") and r.next_attempt <= now and r.id not in self.busy:
                    groups[domain_of(r.address)].append(r)
            for domain, rcpts in groups.items():
                by_domain[domain].append(Job(msg, rcpts))
        for domain, jobs in by_domain.items():
            free = self.cfg.max_per_domain - self.per_domain[domain]
            if free <= 0:
                continue
            per_conn = self.cfg.max_per_connection
            batches = [jobs[i : i + per_conn] for i in range(0, len(jobs), per_conn)][:free]
            for batch in batches:
                for job in batch:
                    self.busy.update(r.id for r in job.rcpts)
                self.per_domain[domain] += 1
                task = asyncio.create_task(self._run_batch(domain, batch))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _run_batch(self, domain: str, jobs: list[Job]) -> None:
        try:
            async with self.total:
                await self._deliver_domain(domain, jobs)
        except Exception:
            log.exception("outbound: delivery to %s failed", domain)
        finally:
            self.per_domain[domain] -= 1
            for job in jobs:
                self.busy.difference_update(r.id for r in job.rcpts)

    # --- one destination -----------------------------------------------------------------
    async def _deliver_domain(self, domain: str, jobs: list[Job]) -> None:
        try:
            dest = await route(domain, self.cfg, self.dns)
            policy = await self._sts_policy(domain, dest)
            if policy is not None:
                dest = self._sts_route(dest, policy)
        except RouteError as exc:
            for job in jobs:
                await self._record(job, {r.address: Reply(550 if exc.permanent else 451, str(exc)) for r in job.rcpts},
                                   None, Outcome())  # fmt: skip
            return
        client: SmtpClient | None = None
        try:
            for i, job in enumerate(jobs):
                if client is None:
                    try:
                        client = await self._connect(dest, policy)
                    except SmtpClientError as exc:
                        # Nobody answers: every job left waits for the next round.
                        for left in jobs[i:]:
                            await self._record(left, {r.address: Reply(exc.code, exc.text) for r in left.rcpts},
                                               None, Outcome())  # fmt: skip
                        return
                try:
                    data = await self._prepare(job.msg)
                    env = Envelope(
                        job.msg.mail_from, [(r.address, r.notify, r.orcpt) for r in job.rcpts], data,
                        job.msg.envid, job.msg.ret, job.msg.smtputf8, job.msg.body_8bit,
                    )  # fmt: skip
                    outcome = await client.send(env)
                    replies = {r.address: outcome.replies.get(r.address, Reply(451, "4.4.0 no reply")) for r in job.rcpts}
                    await self._record(job, replies, client.peer, outcome)
                    self._relayed(job, data, client, replies)
                except SmtpClientError as exc:
                    await self._record(job, {r.address: Reply(exc.code, exc.text) for r in job.rcpts}, client.peer,
                                       Outcome())  # fmt: skip
                    if not exc.permanent:  # the link is gone or unusable: reconnect for the next one
                        await client.close()
                        client = None
        finally:
            if client is not None:
                await client.quit()

    def _relayed(self, job: Job, data: bytes, client: SmtpClient, replies: dict[str, Reply]) -> None:
        """A "relayed" message event for the sender's journey (courriel.trace.events): which MX
        took it, with or without TLS, and its reply. Keyed by the Message-ID (the queued copy
        is not a stored message); only for mail an authenticated user submitted."""
        sender = job.msg.auth_user
        accepted = sorted(a for a, r in replies.items() if r.code // 100 == 2)
        if not sender or not accepted or not events.enabled(self.ctx):
            return
        message_id = events.message_id_of(data)
        if not message_id:
            return
        details = {
            "message_id": message_id, "mx": client.peer, "tls": client.tls, "recipients": accepted,
            "reply": replies[accepted[0]].line, "queue_id": job.msg.id,
        }  # fmt: skip
        store = self.ctx.store

        async def make() -> list[MessageEvent]:
            user = await store.get_user(sender)
            if user is None:
                return []
            return [MessageEvent(user.id, 0, time.time(), "relayed", "SMTP", client.peer, details)]

        events.write_later_from(store, make())

    async def _connect(self, dest: Route, policy: Policy | None = None) -> SmtpClient:
        errors: list[str] = []
        for hop in dest.hops:
            for ip in hop.addresses:
                try:
                    return await self._open(hop, ip, dest.relay, policy)
                except SmtpClientError as exc:
                    errors.append(f"{hop.host}[{ip}]: {exc.text}")
                    if exc.permanent and dest.relay:
                        raise
        raise SmtpClientError(421, "4.4.1 " + ("; ".join(errors[:3]) or "no host to connect to"))

    def _tls_context(self, verify: bool) -> ssl.SSLContext:
        """One client context per mode, made once (loading the CA bundle is not free)."""
        ctx = self.tls_contexts.get(verify)
        if ctx is None:
            ctx = ssl.create_default_context()
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.tls_contexts[verify] = ctx
        return ctx

    async def _open(self, hop: Hop, ip: str, relay: bool, policy: Policy | None = None) -> SmtpClient:
        cfg = self.cfg
        peer = f"{hop.host}[{ip}]"
        implicit = relay and cfg.smarthost_tls == "tls"
        client = await SmtpClient.connect(
            ip, hop.port, cfg.timeout, peer, self._tls_context(cfg.tls_verify) if implicit else None, hop.host
        )
        try:
            await client.ehlo(self.hostname)
            if policy is not None and not relay:
                return await self._sts_open(client, hop, ip, policy)
            need_tls = relay and cfg.smarthost_tls == "starttls"
            if not client.tls and "STARTTLS" in client.extensions and ((relay and cfg.smarthost_tls != "none") or not relay):
                try:
                    await client.starttls(self._tls_context(cfg.tls_verify), hop.host)
                except SmtpClientError:
                    if need_tls or cfg.tls_verify:
                        raise
                    # Opportunistic TLS failed: plain text, on a new connection.
                    await client.close()
                    client = await SmtpClient.connect(ip, hop.port, cfg.timeout, peer)
                    await client.ehlo(self.hostname)
                    return client
                await client.ehlo(self.hostname)  # RFC 3207 §4.2: forget what was said before TLS
            elif need_tls and not client.tls:
                raise SmtpClientError(530, f"5.7.10 {peer} does not offer STARTTLS, required for the relay")
            if relay and cfg.smarthost_user:
                await client.auth(cfg.smarthost_user, cfg.smarthost_password)
            return client
        except SmtpClientError:
            await client.close()
            raise

    # --- MTA-STS (RFC 8461 §4-5) and TLS-RPT (RFC 8460) -------------------------------------
    async def _sts_policy(self, domain: str, dest: Route) -> Policy | None:
        """The policy to apply to an MX delivery (never to a configured relay)."""
        if self.mta_sts is None or dest.relay or domain.startswith("["):
            return None
        policy = await self.mta_sts.policy(domain)
        return policy if policy is not None and policy.mode != "none" else None

    def _sts_route(self, dest: Route, policy: Policy) -> Route:
        """§4.1: MX hosts the policy does not name are failures; enforce mode skips them."""
        allowed = tuple(h for h in dest.hops if policy.matches(h.host))
        for hop in dest.hops:
            if hop not in allowed:
                self.tls_recorder.record(TlsOutcome(policy, False, "validation-failure", hop.host, hop.addresses[0]))
        if policy.mode != "enforce" or allowed == dest.hops:
            return dest
        if not allowed:
            hosts = ", ".join(h.host for h in dest.hops)
            raise RouteError(False, "4.7.5", f"MTA-STS policy of {policy.domain} (enforce) allows none of its "
                                             f"MX hosts ({hosts}); the policy names mx {', '.join(policy.mx)}")  # fmt: skip
        return Route(allowed, dest.relay, dest.key)

    def _sts_context(self) -> ssl.SSLContext:
        if self._sts_ssl is None:
            self._sts_ssl = ssl.create_default_context(cafile=self.cfg.mta_sts_ca_bundle or None)
        return self._sts_ssl

    async def _sts_open(self, client: SmtpClient, hop: Hop, ip: str, policy: Policy) -> SmtpClient:
        """§5: STARTTLS with a certificate valid for the MX name. Enforce: a failure defers
        the delivery (never a downgrade); testing: it is reported, delivery goes on."""
        peer = f"{hop.host}[{ip}]"
        enforce = policy.mode == "enforce"
        if "STARTTLS" not in client.extensions:
            self.tls_recorder.record(TlsOutcome(policy, False, "starttls-not-supported", hop.host, ip))
            if enforce:
                raise SmtpClientError(451, f"4.7.5 {peer} does not offer STARTTLS, required by the MTA-STS "
                                           f"policy of {policy.domain}")  # fmt: skip
            return client
        try:
            await client.starttls(self._sts_context(), hop.host)
        except SmtpClientError as exc:
            self.tls_recorder.record(TlsOutcome(policy, False, classify_tls_error(exc.text), hop.host, ip))
            if enforce:
                raise SmtpClientError(451, f"4.7.5 MTA-STS policy of {policy.domain}: {exc.text}") from None
            await client.close()  # testing: on, with TLS unchecked (or plain text)
            client = await SmtpClient.connect(ip, hop.port, self.cfg.timeout, peer)
            try:
                await client.ehlo(self.hostname)
                if "STARTTLS" in client.extensions:
                    await client.starttls(self._tls_context(False), hop.host)
                    await client.ehlo(self.hostname)
            except SmtpClientError:
                await client.close()
                raise
            return client
        self.tls_recorder.record(TlsOutcome(policy, True, "", hop.host, ip))
        await client.ehlo(self.hostname)  # RFC 3207 §4.2
        return client

    async def _enqueue_report(self, data: bytes, mail_from: str, to: list[str]) -> None:
        await self.store.enqueue(data, mail_from, [QueueRecipient(a, "NEVER") for a in to], source="tlsrpt")

    async def _prepare(self, msg: QueuedMessage) -> bytes:
        """The message bytes as sent: DKIM-signed when the sender's domain has a key."""
        data = await self.store.read_message(msg.blob)
        if msg.mail_from:
            signed = await asyncio.to_thread(self.signer.sign, data, domain_of(msg.mail_from))
            if signed is not None:
                data = signed
        return data

    # --- results -------------------------------------------------------------------------
    def _retry_delay(self, attempts: int) -> int:
        return int(min(self.cfg.retry_base * 2 ** max(attempts - 1, 0), self.cfg.retry_max))

    async def _record(self, job: Job, replies: dict[str, Reply], peer: str | None, outcome: Outcome) -> None:
        """Commit the outcome of one attempt for one message's recipients; send reports."""
        now = datetime.now(UTC)
        msg = job.msg
        expires = msg.created + timedelta(seconds=self.cfg.lifetime)
        updates: list[RecipientUpdate] = []
        reports: dict[str, list[dsn.DsnRecipient]] = defaultdict(list)
        for r in job.rcpts:
            reply = replies[r.address]
            status = dsn.status_of(reply.code, reply.text)
            diagnostic = reply.line
            cls = reply.code // 100
            if cls == 2:
                updates.append(RecipientUpdate(r.id, "delivered", None, None))
                metrics.outbound("delivered", (now - msg.created).total_seconds())
                log.info("outbound: queue %s to <%s> delivered via %s: %s", msg.id, r.address, peer, reply.line)
                if _wants(r.notify, "SUCCESS") and not outcome.dsn_passed:
                    reports["relayed"].append(
                        dsn.DsnRecipient(r.address, r.orcpt, "relayed", status, diagnostic, _mta(peer), now)
                    )
                continue
            if cls == 4 and now < expires:
                attempts = r.attempts + 1
                nxt = min(now + timedelta(seconds=self._retry_delay(attempts)), expires)
                updates.append(RecipientUpdate(r.id, "deferred", nxt, diagnostic))
                metrics.outbound("deferred")
                log.info("outbound: queue %s to <%s> deferred until %s: %s", msg.id, r.address, nxt, diagnostic)
                age = (now - msg.created).total_seconds()
                warn = self.cfg.delay_warning
                prev_age = age - self._retry_delay(r.attempts) if r.attempts else -1.0
                if warn and age >= warn and prev_age < warn and _wants(r.notify, "DELAY"):
                    reports["delayed"].append(
                        dsn.DsnRecipient(r.address, r.orcpt, "delayed", status, diagnostic, _mta(peer), now, expires)
                    )
                continue
            if cls == 4:  # RFC 3463: 4.4.7, delivery time expired
                status = "4.4.7"
                diagnostic = f"{diagnostic} (gave up after {self.cfg.lifetime} seconds)"
            updates.append(RecipientUpdate(r.id, "failed", None, diagnostic))
            metrics.outbound("failed")
            log.info("outbound: queue %s to <%s> failed: %s", msg.id, r.address, diagnostic)
            if _wants(r.notify, "FAILURE"):
                reports["failed"].append(
                    dsn.DsnRecipient(r.address, r.orcpt, "failed", status, diagnostic, _mta(peer), now)
                )
        if msg.mail_from:
            # Reports go out before the queue forgets the message: a crash in between may
            # repeat a report but never lose one.
            data = b""
            for recipients in reports.values():
                if not data:
                    data = await self.store.read_message(msg.blob)
                report = dsn.build_report(
                    sender=msg.mail_from, reporting_mta=self.hostname, original=data, recipients=recipients,
                    envid=msg.envid, ret=msg.ret, arrival=msg.created, now=now,
                )  # fmt: skip
                await self.send_report(msg.mail_from, report)
        await self.store.update_queue(updates)

    async def send_report(self, to: str, report: bytes) -> None:
        """Deliver a report to a local sender's INBOX, or queue it with the null sender."""
        target = self.srs.reverse(to) or to
        try:
            if await self.resolver.is_local(domain_of(target)):
                res = await self.resolver.resolve(target)
                if res.local:
                    data = b"Return-Path: <>\r\n" + report
                    await self.store.deliver(data, [AppendTarget(t.inbox_id) for t in res.local], mail_from=None)
                external = res.external
            else:
                external = [target]
            if external:
                await self.store.enqueue(report, "", [QueueRecipient(a, "NEVER") for a in external], source="dsn")
        except Exception as exc:
            log.warning("outbound: cannot deliver a report to <%s>: %s", target, exc)


def _mta(peer: str | None) -> str | None:
    return peer.partition("[")[0] if peer else None


def outbound_service(ctx: Context) -> Outbound:
    return Outbound(ctx)
