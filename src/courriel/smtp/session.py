"""One SMTP session: the state machine, its dispatch table, and errors turned into replies.

The loop reads a command line, parses it (:mod:`.protocol`), checks that the command is
allowed in the current state (:data:`ALLOWED`), and calls its handler from
:data:`HANDLERS`. Handlers raise :class:`SmtpError`; the loop is the one place that turns
it into a reply, counts bad commands and closes the session when asked.

States (RFC 5321 §4.1.4): FRESH (greeted, no EHLO yet), READY (EHLO done, no transaction),
MAIL (MAIL FROM given), RCPT (at least one recipient accepted). STARTTLS resets to FRESH
(RFC 3207 §4.2). The transaction commands live in :mod:`.transaction`, AUTH and STARTTLS
in :mod:`.auth`.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from courriel import metrics
from courriel.auth.limits import AuthLimiter
from courriel.config import SmtpSection
from courriel.delivery.local import LocalTarget, Resolver, TargetCache
from courriel.net import Connection
from courriel.smtp import protocol as p
from courriel.smtp.protocol import Reply, SmtpError, err
from courriel.smtp.stream import Closed, Input, Interrupted, Output, TimedOut
from courriel.store.api import QueueRecipient, Store

if TYPE_CHECKING:
    from courriel.delivery.spam import SpamFilter
    from courriel.mailauth.inbound import InboundChecker
    from courriel.mailauth.srs import Srs

log = logging.getLogger("courriel.smtp")

#: RFC 4954 §4: an AUTH command line (with its initial response) may be 12288 octets.
MAX_COMMAND_LINE = 12288
#: Ordinary command lines: 512 octets (RFC 5321 §4.5.3.1.4) plus room for ESMTP parameters.
MAX_PLAIN_COMMAND = 2048


class State(enum.Enum):
    FRESH = "fresh"
    READY = "ready"
    MAIL = "mail"
    RCPT = "rcpt"


@dataclass
class Policy:
    """What a listener allows: the MX, submission (587) and submissions (465) differ here."""

    name: str  # listener section: smtp, submission, submissions
    hostname: str
    domain: str  # for <postmaster> without a domain (RFC 5321 §4.5.1)
    auth_required: bool  # submission: no MAIL before AUTH
    plaintext_auth: bool  # AUTH allowed before TLS (submission.allow_plaintext_auth)
    max_size: int
    max_line: int
    limits: SmtpSection
    ssl_context: Callable[[], ssl.SSLContext] | None  # STARTTLS, None when TLS is implicit
    cache: TargetCache = field(default_factory=TargetCache)
    #: The MX's SPF/DKIM/DMARC checks (mailauth.enabled), for unauthenticated sessions.
    checker: InboundChecker | None = None
    #: The MX's spam filter (spam.enabled), for unauthenticated sessions.
    spam: SpamFilter | None = None
    #: Sender rewriting for mail forwarded to external alias targets, and its reverse.
    srs: Srs | None = None


@dataclass
class Transaction:
    """One MAIL ... DATA/BDAT LAST transaction (RFC 5321 §3.3)."""

    id: str
    mail: p.MailFrom
    rcpts: list[str] = field(default_factory=list)  # accepted envelope recipients
    rejected: list[str] = field(default_factory=list)
    local: dict[int, LocalTarget] = field(default_factory=dict)  # by INBOX id
    external: dict[str, QueueRecipient] = field(default_factory=dict)  # by address, lower case
    bdat: bytearray | None = None  # chunks so far (RFC 3030)
    bdat_failed: Reply | None = None


_ids = itertools.count(1)
_id_prefix = secrets.token_hex(3).upper()


def new_id() -> str:
    """A transaction id, unique in the process and across restarts (random prefix)."""
    return f"{_id_prefix}{next(_ids):06X}"


class Session:
    #: The greeting's protocol word and the command tables; LMTP (courriel.lmtp) overrides them.
    banner: ClassVar[str] = "ESMTP"
    handlers: ClassVar[dict[str, Handler]]
    allowed: ClassVar[dict[State, frozenset[str]]]

    def __init__(
        self, conn: Connection, policy: Policy, store: Store, auth_limiter: AuthLimiter
    ) -> None:
        self.conn = conn
        self.policy = policy
        self.store = store
        self.auth_limiter = auth_limiter
        self.resolver = Resolver(store, policy.cache)
        self.out = Output(conn.writer)
        self.input = Input(conn.reader, self.out.flush)
        self.input.timeout = policy.limits.command_timeout
        self.out.timeout = policy.limits.command_timeout
        self.state = State.FRESH
        self.helo = ""
        self.esmtp = False
        self.auth_user: str | None = None
        self.auth_failures = 0
        self.bad_commands = 0
        self.messages = 0
        self.tx: Transaction | None = None
        self.closing = False
        self._idle = False
        self._shutdown = False

    # --- properties the handlers read ---------------------------------------------------
    @property
    def tls(self) -> bool:
        return self.conn.tls

    @property
    def auth_allowed(self) -> bool:
        """RFC 4954 §4 and our policy: passwords only over TLS (unless configured for tests)."""
        return self.tls or self.policy.plaintext_auth

    def reply(self, code: int, enhanced: str | None, text: str | tuple[str, ...]) -> None:
        self.out.reply(Reply(code, enhanced, text))

    def reset_transaction(self, result: str | None = "abandoned") -> None:
        if self.tx is not None and result is not None:
            self.log_transaction(self.tx, 0, result)
        self.tx = None
        if self.state in (State.MAIL, State.RCPT):
            self.state = State.READY

    def log_transaction(self, tx: Transaction, size: int, result: str) -> None:
        metrics.delivery(self.policy.name, _outcome(result))
        tls = self.conn.tls_info()
        log.info(
            "%s id=%s ip=%s helo=%s from=<%s> to=%s rejected=%s size=%d tls=%s auth=%s result=%s",
            self.policy.name, tx.id, self.conn.peer_ip, self.helo or "-", tx.mail.address,
            ",".join(f"<{r}>" for r in tx.rcpts) or "-", ",".join(f"<{r}>" for r in tx.rejected) or "-",
            size, f"{tls[0]}/{tls[1]}" if tls else "no", self.auth_user or "-", result,
        )  # fmt: skip

    # --- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        self.conn.on_shutdown = self.on_shutdown
        self.reply(220, None, f"{self.policy.hostname} {self.banner} courriel")
        try:
            async with asyncio.timeout(self.policy.limits.session_timeout):
                await self._loop()
        except TimeoutError:
            self.out.reply(Reply(421, "4.4.2", f"{self.policy.hostname} session too long, closing"))
        except TimedOut:
            self.out.reply(Reply(421, "4.4.2", f"{self.policy.hostname} timeout, closing"))
        except Interrupted:
            self.out.reply(p.SHUTDOWN)
        except Closed:
            pass
        finally:
            self.input.stop()
            if self.tx is not None:
                self.reset_transaction("abandoned: connection ended")
        if not self.conn.writer.is_closing():
            try:
                await self.out.flush()
                await asyncio.wait_for(self.conn.writer.drain(), 5)
            except (ConnectionError, ssl.SSLError, TimeoutError, TimedOut):
                pass

    async def _loop(self) -> None:
        while not self.closing:
            if self._shutdown:
                self.out.reply(p.SHUTDOWN)
                return
            self._idle = True
            try:
                line = await self.input.line(MAX_COMMAND_LINE)
            finally:
                self._idle = False
            if self.shutting_down():
                self.out.reply(p.SHUTDOWN)
                return
            try:
                if line is None:
                    raise err(500, "5.5.6", "Line too long")
                await self.dispatch(line)
            except SmtpError as exc:
                self.out.reply(exc.reply)
                if exc.reply.code in (500, 501, 502, 503, 504, 555):
                    self.bad_commands += 1
                    if self.bad_commands >= self.policy.limits.max_bad_commands:
                        self.out.reply(Reply(421, "4.7.0", "Too many errors, closing"))
                        return
                if exc.close:
                    return
            except (Closed, TimedOut, Interrupted, ConnectionError, ssl.SSLError):
                raise
            except Exception:
                # A bug, or a store failure nobody expected: a temporary error for this
                # command (the client retries later), a log line, and the session goes on.
                log.exception("%s: %s: internal error", self.policy.name, self.conn.peer_ip)
                self.tx, self.state = None, (State.READY if self.state is not State.FRESH else State.FRESH)
                self.out.reply(Reply(451, "4.3.0", "Local error in processing, try again later"))

    async def dispatch(self, line: bytes) -> None:
        cmd = p.parse_command(line)
        handler = self.handlers.get(cmd.verb)
        if handler is None:
            raise err(500, "5.5.2", "Syntax error, command unrecognized")
        if cmd.verb != "AUTH" and len(line) > MAX_PLAIN_COMMAND:
            raise err(500, "5.5.6", "Line too long")
        if cmd.verb not in self.allowed[self.state]:
            if cmd.verb == "BDAT":
                await self._drop_chunk(cmd.arg)
            if self.state is State.FRESH:
                raise err(503, "5.5.1", "Send EHLO or HELO first")
            raise err(503, "5.5.1", f"Bad sequence of commands: {cmd.verb} not allowed now")
        started = time.perf_counter()
        try:
            await handler(self, cmd.arg)
        finally:
            metrics.command(self.policy.name, cmd.verb, time.perf_counter() - started)

    async def _drop_chunk(self, arg: str) -> None:
        """A BDAT out of sequence still sends its chunk: read it past (RFC 3030 §2)."""
        try:
            size, _ = p.parse_bdat(arg)
        except SmtpError:
            return
        if size > self.policy.max_size * 2:
            self.closing = True  # cannot resynchronise cheaply; drop the connection
            raise err(554, "5.5.1", "Bad sequence of commands, closing", close=True)
        self.input.timeout = self.policy.limits.data_timeout
        try:
            await self.input.exact(size, keep=False)
        finally:
            self.input.timeout = self.policy.limits.command_timeout

    async def finish(self, tx: Transaction, message: bytes) -> None:
        """The whole message is in (DATA or BDAT LAST): check, store, reply."""
        from courriel.smtp.transaction import finish

        await finish(self, tx, message)

    def shutting_down(self) -> bool:
        return self._shutdown

    async def on_shutdown(self) -> None:
        """Server stopping: 421 now if the session waits for a command, else after it."""
        self._shutdown = True
        if self._idle:
            self.input.interrupt()  # the loop answers 421 and ends


# --- simple commands ---------------------------------------------------------------------


async def cmd_ehlo(s: Session, arg: str) -> None:
    name = p.parse_helo(arg)
    s.reset_transaction()
    s.helo, s.esmtp, s.state = name, True, State.READY
    caps = [
        f"{s.policy.hostname} greets {name}",
        "PIPELINING",
        f"SIZE {s.policy.max_size}",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
    ]
    if not s.tls and s.policy.ssl_context is not None:
        caps.append("STARTTLS")
    if s.auth_allowed and s.auth_user is None:
        from courriel.auth.sasl import MECHANISMS

        caps.append("AUTH " + " ".join(MECHANISMS))
    caps.append("HELP")
    s.reply(250, None, tuple(caps))


async def cmd_helo(s: Session, arg: str) -> None:
    name = p.parse_helo(arg)
    s.reset_transaction()
    s.helo, s.esmtp, s.state = name, False, State.READY
    s.reply(250, None, f"{s.policy.hostname} greets {name}")


async def cmd_noop(s: Session, arg: str) -> None:
    s.out.reply(p.OK)


async def cmd_rset(s: Session, arg: str) -> None:
    if arg.strip():
        raise p.syntax("RSET takes no argument")
    s.reset_transaction("reset")
    s.out.reply(p.OK)


async def cmd_quit(s: Session, arg: str) -> None:
    s.reset_transaction("abandoned: QUIT")
    s.out.reply(p.BYE)
    s.closing = True


async def cmd_vrfy(s: Session, arg: str) -> None:
    # RFC 5321 §3.5.3: 252 when the server will not verify (no address harvesting).
    if not arg.strip():
        raise p.syntax("Syntax: VRFY <address>")
    s.out.reply(p.VRFY_CANNOT)


async def cmd_expn(s: Session, arg: str) -> None:
    # RFC 5321 §7.3: list expansion may be disabled; it reveals alias members.
    raise err(502, "5.5.1", "EXPN is disabled")


async def cmd_help(s: Session, arg: str) -> None:
    s.reply(
        214,
        "2.0.0",
        (
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
            "See RFC 5321",
        ),
    )


Handler = Callable[[Session, str], Awaitable[None]]

_ALWAYS = frozenset({"EHLO", "HELO", "NOOP", "RSET", "QUIT", "VRFY", "EXPN", "HELP"})
#: Commands allowed in each state; anything else gets 503 5.5.1 (RFC 5321 §4.1.4).
ALLOWED: dict[State, frozenset[str]] = {
    State.FRESH: _ALWAYS | {"STARTTLS"},
    State.READY: _ALWAYS | {"STARTTLS", "AUTH", "MAIL"},
    # DATA/BDAT with no accepted recipient get 554 5.5.1 from their handler (RFC 2920 §3.1).
    State.MAIL: _ALWAYS | {"RCPT", "DATA", "BDAT"},
    State.RCPT: _ALWAYS | {"RCPT", "DATA", "BDAT"},
}

HANDLERS: dict[str, Handler] = {
    "EHLO": cmd_ehlo,
    "HELO": cmd_helo,
    "NOOP": cmd_noop,
    "RSET": cmd_rset,
    "QUIT": cmd_quit,
    "VRFY": cmd_vrfy,
    "EXPN": cmd_expn,
    "HELP": cmd_help,
}


def _register() -> None:
    from courriel.smtp import auth, transaction

    HANDLERS.update(
        {
            "MAIL": transaction.cmd_mail,
            "RCPT": transaction.cmd_rcpt,
            "DATA": transaction.cmd_data,
            "BDAT": transaction.cmd_bdat,
            "STARTTLS": auth.cmd_starttls,
            "AUTH": auth.cmd_auth,
        }
    )


_register()
Session.handlers, Session.allowed = HANDLERS, ALLOWED


def _outcome(result: str) -> str:
    """The metrics label of a transaction's logged result: accepted, deferred or rejected."""
    if result.startswith("250"):
        return "accepted"
    code = next((w for w in result.split() if w.isdigit() and len(w) == 3), "")
    if code.startswith("2"):
        return "accepted"
    return "deferred" if code.startswith("4") else "rejected"
