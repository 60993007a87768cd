"""One POP3 connection: read a command, check it against the state's table, run its handler.

Errors become replies in one place (:meth:`Session.dispatch`): a :class:`ParseError` or a
command not valid in the current state is ``-ERR`` and counts as a bad command; a
:class:`Pop3Error` is ``-ERR [code] text``; a store refusal is ``-ERR [SYS/TEMP]``; anything
else is logged and ends the connection with ``-ERR [SYS/TEMP]``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from courriel import metrics
from courriel.auth import sasl
from courriel.config import Pop3Section
from courriel.net import Connection
from courriel.pop3.maildrop import Maildrop
from courriel.pop3.protocol import (
    Code,
    Command,
    ParseError,
    Pop3Error,
    State,
    apop_matches,
    apop_timestamp,
    capabilities,
    challenge,
    err,
    message_response,
    multiline,
    ok,
    parse_command,
    top,
    unique_id,
)
from courriel.server import Context
from courriel.store.api import Credentials, StoreError
from courriel.trace.events import Retrievals

log = logging.getLogger("courriel.pop3")

IMPLEMENTATION = "courriel"
#: Wait for the client to read (drain) once this much output is buffered.
FLUSH_AT = 256 * 1024
#: Mechanisms that carry the password itself: offered only when plaintext passwords are.
PLAINTEXT_MECHANISMS = ("PLAIN", "LOGIN")


class _Closed(Exception):
    """The client went away (EOF) in the middle of an exchange."""


Handler = Callable[["Session", Command], Awaitable[None]]


class Session:
    def __init__(self, ctx: Context, conn: Connection, stls: bool) -> None:
        self.ctx = ctx
        self.conn = conn
        self.cfg: Pop3Section = ctx.cfg.pop3
        self.stls_offered = stls
        self.state = State.AUTHORIZATION
        self.timestamp = apop_timestamp(ctx.cfg.server.hostname)
        self.maildrop: Maildrop | None = None
        self.address = ""
        self.closing = False
        self._user: str | None = None  # the name given by USER, for the next PASS only
        self._pending_user: str | None = None
        self._auth_attempts = 0
        self._bad_commands = 0
        self._waiting = False  # between commands (safe to interrupt at shutdown)
        self._loop = asyncio.get_running_loop()
        self._active = self._loop.time()  # when the client last sent or took data
        self._idle: asyncio.TimerHandle | None = None
        self.retrievals = Retrievals.for_session(ctx, "POP3", conn)  # message events

    # --- I/O ---------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.conn.writer.write(data)

    async def flush(self) -> None:
        """Wait for the client to take what was sent, once the transport holds a lot."""
        writer = self.conn.writer
        if writer.transport.get_write_buffer_size() > FLUSH_AT:
            await writer.drain()
            self._active = self._loop.time()

    def _start_idle_timer(self) -> None:
        self._idle = self._loop.call_later(self.cfg.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        """RFC 1939 §3: the autologout timer (one timer per session, not one per command).

        Fires when nothing was read for ``idle_timeout`` seconds, or when the client stopped
        reading what we send; the session then ends without the UPDATE state."""
        idle = self._loop.time() - self._active
        if idle < self.cfg.idle_timeout:
            self._idle = self._loop.call_later(self.cfg.idle_timeout - idle, self._idle_check)
            return
        log.info("pop3: %s: idle for %d s, closing", self.conn.peer_ip, int(idle))
        self.closing = True
        if self._waiting:
            self.send(err("autologout: idle for too long"))
        self.conn.writer.close()
        if self.conn.writer.transport.get_write_buffer_size():
            # The client stopped reading: a closing transport would wait for it for ever
            # (and so would a drain() in progress); drop the connection.
            self.conn.writer.transport.abort()

    async def read_line(self, limit: int) -> bytes:
        """One line of at most ``limit`` octets (CRLF included). Raises _Closed at EOF."""
        try:
            line = await self.conn.reader.readline()
        except ValueError:  # longer than the reader's buffer limit: framing is lost
            self.send(err("line too long, closing"))
            raise _Closed from None
        self._active = self._loop.time()
        if not line.endswith(b"\n"):
            raise _Closed
        if len(line) > limit:
            raise ParseError("line too long")
        return line

    async def _shutdown(self) -> None:
        """The server stops: say so and close at once if waiting for a command."""
        self.closing = True
        if self._waiting:
            self.send(err("server shutting down", Code.SYS_TEMP))
            await self.conn.writer.drain()
            self.conn.writer.close()

    # --- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        self.conn.on_shutdown = self._shutdown
        # RFC 1939 §7: the APOP timestamp is in the greeting, new for every connection.
        self.send(ok(f"courriel POP3 server ready {self.timestamp}"))
        self._start_idle_timer()
        try:
            while not self.closing:
                self._waiting = True
                try:
                    line = await self.read_line(self.cfg.max_command_length)
                except ParseError as exc:
                    self._bad(str(exc))
                    continue
                finally:
                    self._waiting = False
                await self.dispatch(line)
                await self.flush()
        except _Closed:
            pass
        finally:
            if self.address:
                log.info(
                    "pop3: %s: %s logged out after %.0f s", self.conn.peer_ip, self.address,
                    time.monotonic() - self.conn.opened,
                )  # fmt: skip
            if self._idle is not None:
                self._idle.cancel()
            if self.maildrop is not None:
                self.maildrop.close()  # a dropped connection removes nothing
                self.maildrop = None
            if self.retrievals is not None:
                self.retrievals.close()
        if not self.conn.writer.is_closing():
            await self.conn.writer.drain()

    async def dispatch(self, line: bytes) -> None:
        self._pending_user, self._user = self._user, None
        try:
            cmd = parse_command(line)
            handler = TABLES[self.state].get(cmd.name)
            if handler is None:
                raise ParseError(f"{cmd.name} is not valid in the {self.state.value} state")
            started = time.perf_counter()
            try:
                await handler(self, cmd)
            finally:
                metrics.command("pop3", cmd.name, time.perf_counter() - started)
            self._bad_commands = 0
        except ParseError as exc:
            self._bad(str(exc))
        except Pop3Error as exc:
            self.send(err(exc.text, exc.code))
            if exc.close:
                self.closing = True
        except StoreError as exc:
            log.warning("pop3: %s: store refused: %s", self.conn.peer_ip, exc)
            self.send(err(str(exc), Code.SYS_TEMP))
        except (_Closed, ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("pop3: %s: command failed", self.conn.peer_ip)
            self.send(err("internal error, closing", Code.SYS_TEMP))
            self.closing = True

    def _bad(self, text: str) -> None:
        self._bad_commands += 1
        if self._bad_commands >= self.cfg.max_bad_commands:
            self.send(err(text + "; too many bad commands, closing"))
            self.closing = True
        else:
            self.send(err(text))

    # --- authorization ---------------------------------------------------------------------
    @property
    def plaintext_ok(self) -> bool:
        """Passwords in the clear only under TLS, or on loopback when configured."""
        return self.conn.tls or (self.cfg.allow_plaintext_auth and self.conn.is_loopback)

    def mechanisms(self) -> tuple[str, ...]:
        return tuple(m for m in sasl.MECHANISMS if self.plaintext_ok or m not in PLAINTEXT_MECHANISMS)

    def _require_plaintext(self) -> None:
        if not self.plaintext_ok:
            raise Pop3Error("plaintext authentication disallowed before TLS (use STLS)", Code.AUTH)

    async def cmd_capa(self, cmd: Command) -> None:
        caps = capabilities(
            stls=self.stls_offered and not self.conn.tls and self.state is State.AUTHORIZATION,
            user=self.plaintext_ok and self.state is State.AUTHORIZATION,
            mechanisms=self.mechanisms() if self.state is State.AUTHORIZATION else (),
            implementation=IMPLEMENTATION,
        )
        self.send(multiline("capability list follows", caps))

    async def cmd_stls(self, cmd: Command) -> None:
        if not self.stls_offered:
            raise Pop3Error("STLS is not offered here")
        if self.conn.tls:
            raise Pop3Error("TLS is already active")
        self.send(ok("begin TLS negotiation"))
        await self.conn.writer.drain()
        # RFC 2595 §4: anything the client pipelined after STLS is discarded.
        dropped = await self.conn.start_tls(self.ctx.ssl_context())
        if dropped:
            log.info("pop3: %s: dropped %d octets sent before the TLS handshake", self.conn.peer_ip, dropped)

    async def cmd_user(self, cmd: Command) -> None:
        self._require_plaintext()
        self._user = cmd.args[0]
        # RFC 1939 §7 allows -ERR for an unknown name; a constant answer reveals nothing.
        self.send(ok("send PASS"))

    async def cmd_pass(self, cmd: Command) -> None:
        self._require_plaintext()
        name = self._pending_user
        if name is None:
            raise ParseError("PASS must follow USER")
        password = cmd.args[0]
        await self._login(name, lambda: sasl.check_password(self.ctx.store, name, password))

    async def cmd_apop(self, cmd: Command) -> None:
        name, digest = cmd.args

        async def check() -> Credentials | None:
            cred = await self.ctx.store.get_credentials(name)
            if cred is None or not cred.apop_secret:
                return None
            return cred if apop_matches(self.timestamp, cred.apop_secret, digest) else None

        await self._login(name, check)

    async def cmd_auth(self, cmd: Command) -> None:
        offered = self.mechanisms()
        if not cmd.args:  # the mechanism list (RFC 1734 clients ask this way)
            self.send(multiline("SASL mechanisms follow", offered))
            return
        name = cmd.args[0].upper()
        mech = sasl.new_mechanism(name, self.ctx.store, offered)
        if mech is None:
            if name in PLAINTEXT_MECHANISMS:
                self._require_plaintext()
            raise Pop3Error(f"unsupported authentication mechanism {name}")
        initial: bytes | None = None
        if len(cmd.args) == 2:
            initial = self._sasl_response(cmd.args[1].encode("ascii", "replace"))
        await self._login(name, lambda: self._sasl_exchange(mech, initial), in_turn=False)

    def _sasl_response(self, line: bytes) -> bytes:
        try:
            response = sasl.decode_response(line)
        except sasl.SaslError as exc:
            raise Pop3Error(f"authentication failed: {exc}") from None
        if response is None:
            raise Pop3Error("authentication cancelled")
        return response

    async def _sasl_exchange(self, mech: sasl.Mechanism, response: bytes | None) -> Credentials | None:
        """RFC 5034 §4: ``+ base64`` challenges, base64 (or ``*``) responses."""
        while True:
            step = await self.ctx.auth_limiter.checked(self.conn.peer_ip, functools.partial(mech.step, response), _locked_out)
            if isinstance(step, sasl.Challenge):
                response = await self._challenge(step.data)
                continue
            if isinstance(step, sasl.Failure):
                if step.malformed:
                    raise Pop3Error(f"authentication failed: {step.reason}")
                return None
            # RFC 4422 §3.6: without "additional data with success" in POP3, the server's
            # final message is a challenge that the client answers with an empty line.
            if step.final is not None and await self._challenge(step.final) != b"":
                raise Pop3Error("authentication failed: expected an empty response")
            return step.credentials

    async def _challenge(self, data: bytes) -> bytes:
        self.send(challenge(data))
        await self.conn.writer.drain()
        return self._sasl_response(await self.read_line(sasl.MAX_RESPONSE + 2))

    async def _login(
        self, name: str, check: Callable[[], Awaitable[Credentials | None]], in_turn: bool = True
    ) -> None:
        """Run a credential check under the per-address limits, then open the maildrop.

        ``in_turn``: run ``check`` in the address's turn (auth.limits); a SASL exchange, which
        waits for the client, takes the turn for each step itself instead."""
        ip = self.conn.peer_ip
        limiter = self.ctx.auth_limiter
        if limiter.refused(ip):
            raise _locked_out()
        delay = limiter.delay(ip)
        if delay:
            await asyncio.sleep(delay)
        cred = await (limiter.checked(ip, check, _locked_out) if in_turn else check())
        if cred is None:
            limiter.failure(ip)
            metrics.login("pop3", False)
            self._auth_attempts += 1
            log.info("pop3: %s: authentication failed for %r", ip, name[:100])
            raise Pop3Error(
                "authentication failed", Code.AUTH, close=self._auth_attempts >= self.cfg.max_auth_attempts
            )
        limiter.success(ip)
        metrics.login("pop3", True)
        self.maildrop = await Maildrop.open(self.ctx.store, cred.user_id)
        self.address = cred.address
        self.state = State.TRANSACTION
        count, octets = self.maildrop.stat()
        log.info("pop3: %s: %s logged in, %d messages", ip, cred.address, count)
        self.send(ok(f"{cred.address} has {count} messages ({octets} octets)"))

    async def cmd_quit(self, cmd: Command) -> None:
        self.closing = True
        if self.state is State.AUTHORIZATION or self.maildrop is None:
            self.send(ok("bye"))
            return
        # RFC 1939 §6: the UPDATE state; the marked messages go in one store operation.
        self.state = State.UPDATE
        try:
            removed = await self.maildrop.commit()
        except StoreError as exc:
            log.warning("pop3: %s: UPDATE failed: %s", self.address, exc)
            raise Pop3Error("some deleted messages not removed", Code.SYS_TEMP) from None
        self.send(ok(f"bye, {len(removed)} messages deleted"))

    # --- transaction -----------------------------------------------------------------------
    @property
    def drop(self) -> Maildrop:
        assert self.maildrop is not None
        return self.maildrop

    async def cmd_stat(self, cmd: Command) -> None:
        count, octets = self.drop.stat()
        self.send(ok(f"{count} {octets}"))

    async def cmd_list(self, cmd: Command) -> None:
        if cmd.numbers:
            n = cmd.numbers[0]
            self.send(ok(f"{n} {self.drop.entry(n).size}"))
            return
        count, octets = self.drop.stat()
        lines = [f"{n} {e.size}" for n, e in self.drop.visible()]
        self.send(multiline(f"{count} messages ({octets} octets)", lines))

    async def cmd_uidl(self, cmd: Command) -> None:
        validity = self.drop.mailbox.uidvalidity
        if cmd.numbers:
            n = cmd.numbers[0]
            self.send(ok(f"{n} {unique_id(validity, self.drop.entry(n).uid)}"))
            return
        lines = [f"{n} {unique_id(validity, e.uid)}" for n, e in self.drop.visible()]
        self.send(multiline("unique-id listing follows", lines))

    async def cmd_retr(self, cmd: Command) -> None:
        data = await self.drop.read(cmd.numbers[0])
        self._retrieved(cmd.numbers[0], peek=False)
        self.send(message_response(f"{len(data)} octets", data))

    async def cmd_top(self, cmd: Command) -> None:
        n, lines = cmd.numbers
        data = await self.drop.read(n)
        self._retrieved(n, peek=True)
        self.send(message_response("top of message follows", top(data, lines)))

    def _retrieved(self, number: int, peek: bool) -> None:
        if self.retrievals is not None:
            self.retrievals.note(self.drop.mailbox.user_id, self.drop.entry(number).content_id, peek)

    async def cmd_dele(self, cmd: Command) -> None:
        n = cmd.numbers[0]
        self.drop.delete(n)
        self.send(ok(f"message {n} deleted"))

    async def cmd_rset(self, cmd: Command) -> None:
        self.drop.reset()
        count, octets = self.drop.stat()
        self.send(ok(f"maildrop has {count} messages ({octets} octets)"))

    async def cmd_noop(self, cmd: Command) -> None:
        self.send(ok())


#: The commands each state accepts (RFC 1939 §4-6, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).
TABLES: dict[State, dict[str, Handler]] = {
    State.AUTHORIZATION: {
        "CAPA": Session.cmd_capa,
        "STLS": Session.cmd_stls,
        "USER": Session.cmd_user,
        "PASS": Session.cmd_pass,
        "APOP": Session.cmd_apop,
        "AUTH": Session.cmd_auth,
        "QUIT": Session.cmd_quit,
    },
    State.TRANSACTION: {
        "CAPA": Session.cmd_capa,
        "STAT": Session.cmd_stat,
        "LIST": Session.cmd_list,
        "UIDL": Session.cmd_uidl,
        "RETR": Session.cmd_retr,
        "TOP": Session.cmd_top,
        "DELE": Session.cmd_dele,
        "RSET": Session.cmd_rset,
        "NOOP": Session.cmd_noop,
        "QUIT": Session.cmd_quit,
    },
    State.UPDATE: {},
}


def _locked_out() -> Pop3Error:
    return Pop3Error("too many failed logins from your address, try later", Code.SYS_TEMP, close=True)
