"""One ManageSieve connection (RFC 5804): framing, the state check against the command
tables, and errors turned into ``NO``/``BYE`` responses in one place."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from enum import Enum

from courriel import metrics
from courriel.auth import sasl
from courriel.managesieve.protocol import (
    MAX_LINE,
    Command,
    ParseError,
    literal,
    literal_size,
    parse_command,
    quote,
    response,
    valid_script_name,
)
from courriel.net import Connection
from courriel.server import Context
from courriel.sieve.delivery import VACATION_SCRIPT
from courriel.sieve.grammar import SieveSyntaxError
from courriel.sieve.interpreter import MAX_REDIRECTS
from courriel.sieve.validate import EXTENSIONS, compile_script
from courriel.store.api import AlreadyExists, Credentials, NotFound, QuotaExceeded, StoreError

log = logging.getLogger("courriel.managesieve")

IMPLEMENTATION = "courriel"
PLAINTEXT_MECHANISMS = ("PLAIN", "LOGIN")


class State(Enum):
    NOT_AUTHENTICATED = 1
    AUTHENTICATED = 2


class SieveError(Exception):
    """A ``NO`` (or, with ``bye``, a ``BYE`` and close) with an optional response code."""

    def __init__(self, text: str, code: str | None = None, bye: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.bye = bye


class BadCommand(SieveError):
    """An unknown command or one not allowed in this state: counts toward max_bad_commands."""


Handler = Callable[["Session", Command], Awaitable[None]]


class Session:
    def __init__(self, ctx: Context, conn: Connection, starttls: bool = True) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg.managesieve
        self.conn = conn
        self.starttls_offered = starttls
        self.state = State.NOT_AUTHENTICATED
        self.user: Credentials | None = None
        self.closing = False
        self.bad_commands = 0
        self.auth_attempts = 0

    # --- output ----------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.conn.writer.write(data)

    def capabilities(self) -> bytes:
        """RFC 5804 §1.7: the capability lines (sent at connect, after STARTTLS, on CAPABILITY)."""
        lines = [
            quote("IMPLEMENTATION") + b" " + quote(IMPLEMENTATION),
            quote("SIEVE") + b" " + quote(" ".join(EXTENSIONS)),
            quote("MAXREDIRECTS") + b" " + quote(str(MAX_REDIRECTS)),
        ]
        if self.state is State.NOT_AUTHENTICATED:
            lines.append(quote("SASL") + b" " + quote(" ".join(self.mechanisms())))
            if self.starttls_offered and not self.conn.tls:
                lines.append(quote("STARTTLS"))
        else:
            lines.append(quote("OWNER") + b" " + quote(self.user.address if self.user else ""))
            lines.append(quote("UNAUTHENTICATE"))
        lines.append(quote("VERSION") + b" " + quote("1.0"))
        return b"".join(line + b"\r\n" for line in lines)

    # --- the loop --------------------------------------------------------------------------
    async def run(self) -> None:
        self.conn.on_shutdown = self.shutdown
        self.send(self.capabilities() + response("OK", "courriel ManageSieve ready"))
        while not self.closing:
            try:
                # The timer also covers a client that sends but never reads our responses.
                async with asyncio.timeout(self.cfg.idle_timeout):
                    await self.conn.writer.drain()
                    data = await self.read_command()
            except TimeoutError:
                self.send(response("BYE", "idle too long", "TRYLATER"))
                break
            except SieveError as exc:
                self.send(response("BYE", exc.text, exc.code))
                break
            if data is None:
                return
            await self.dispatch(data)
        async with asyncio.timeout(self.cfg.idle_timeout):  # then the listener drops it
            await self.conn.writer.drain()

    async def shutdown(self) -> None:
        self.send(response("BYE", "server shutting down", "TRYLATER"))
        await self.conn.writer.drain()

    async def read_line(self, limit: int = MAX_LINE) -> bytes | None:
        try:
            line = await self.conn.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise SieveError("line too long") from None
        if len(line) > limit:
            raise SieveError("line too long")
        return line

    async def read_command(self) -> bytes | None:
        """A whole command: its line, each literal announced at a line's end and what follows."""
        line = await self.read_line()
        if line is None:
            return None
        data = bytearray(line)
        total = 0
        while (size := literal_size(line)) is not None:
            total += size
            if total > self.cfg.max_script_size + MAX_LINE:
                # The client sends a non-synchronising literal anyway: we cannot skip it safely.
                raise SieveError("literal too large", "QUOTA/MAXSIZE")
            try:
                data += await self.conn.reader.readexactly(size)
            except asyncio.IncompleteReadError:
                return None
            rest = await self.read_line()
            if rest is None:
                return None
            data += rest
            line = rest
        return bytes(data)

    async def dispatch(self, data: bytes) -> None:
        try:
            cmd = parse_command(data)
            handler = TABLES[self.state].get(cmd.name)
            if handler is None:
                known = any(cmd.name in t for t in TABLES.values())
                raise BadCommand(f"{cmd.name} not allowed now" if known else "unknown command")
            started = time.perf_counter()
            try:
                await handler(self, cmd)
            finally:
                metrics.command("managesieve", cmd.name, time.perf_counter() - started)
            self.bad_commands = 0
        except ParseError as exc:
            self._bad(f"syntax error: {exc}")
        except SieveError as exc:
            if exc.bye:
                self.send(response("BYE", exc.text, exc.code))
                self.closing = True
            elif (exc.code is None and exc.text in ("unknown command",)) or exc.text.endswith("not allowed now"):
                self._bad(exc.text)
            else:
                self.send(response("NO", exc.text, exc.code))
        except NotFound as exc:
            self.send(response("NO", str(exc), "NONEXISTENT"))
        except AlreadyExists as exc:
            self.send(response("NO", str(exc), "ALREADYEXISTS"))
        except QuotaExceeded as exc:
            self.send(response("NO", str(exc), "QUOTA"))
        except StoreError as exc:
            self.send(response("NO", str(exc)))

    def _bad(self, text: str) -> None:
        self.bad_commands += 1
        if self.bad_commands >= self.cfg.max_bad_commands:
            self.send(response("BYE", text + "; too many bad commands"))
            self.closing = True
        else:
            self.send(response("NO", text))

    # --- helpers ---------------------------------------------------------------------------
    @property
    def plaintext_ok(self) -> bool:
        return self.conn.tls or (self.cfg.allow_plaintext_auth and self.conn.is_loopback)

    def mechanisms(self) -> tuple[str, ...]:
        return tuple(m for m in sasl.MECHANISMS if self.plaintext_ok or m not in PLAINTEXT_MECHANISMS)

    @property
    def user_id(self) -> int:
        assert self.user is not None
        return self.user.user_id


def args(cmd: Command, *kinds: type) -> tuple[object, ...]:
    if len(cmd.args) != len(kinds) or not all(isinstance(a, k) for a, k in zip(cmd.args, kinds, strict=True)):
        raise ParseError(f"{cmd.name}: wrong arguments")
    return cmd.args


def script_name(value: object) -> str:
    assert isinstance(value, str)
    if not valid_script_name(value):
        raise SieveError("invalid script name")
    return value


def writable_name(value: object) -> str:
    """A script name the user may write, delete, rename or activate: not the JMAP vacation's
    system script (LISTSCRIPTS shows it, never ACTIVE, and GETSCRIPT reads it)."""
    name = script_name(value)
    if name == VACATION_SCRIPT:
        raise SieveError(f"the name {VACATION_SCRIPT} is reserved for the vacation response: change it over JMAP")
    return name


# --- commands (RFC 5804 §2) ---------------------------------------------------------------------
async def cmd_capability(s: Session, cmd: Command) -> None:
    args(cmd)
    s.send(s.capabilities() + response("OK", "capability completed"))


async def cmd_noop(s: Session, cmd: Command) -> None:
    if cmd.args:
        (tag,) = args(cmd, str)
        s.send(response("OK", "done", "TAG " + quote(str(tag)).decode("utf-8")))  # RFC 5804 §2.13
    else:
        s.send(response("OK", "done"))


async def cmd_logout(s: Session, cmd: Command) -> None:
    args(cmd)
    s.send(response("OK", "logout completed"))
    s.closing = True


async def cmd_starttls(s: Session, cmd: Command) -> None:
    args(cmd)
    if not s.starttls_offered or s.conn.tls:
        raise SieveError("TLS is not available or already active")
    s.send(response("OK", "begin TLS negotiation"))
    await s.conn.writer.drain()
    dropped = await s.conn.start_tls(s.ctx.ssl_context())
    if dropped:
        log.info("managesieve: %s: dropped %d octets sent before the TLS handshake", s.conn.peer_ip, dropped)
    # RFC 5804 §2.2: after TLS the server sends the capabilities again.
    s.send(s.capabilities() + response("OK", "TLS active"))


async def cmd_authenticate(s: Session, cmd: Command) -> None:
    if not 1 <= len(cmd.args) <= 2 or not all(isinstance(a, str) for a in cmd.args):
        raise ParseError("AUTHENTICATE: wrong arguments")
    name = str(cmd.args[0]).upper()
    mech = sasl.new_mechanism(name, s.ctx.store, s.mechanisms())
    if mech is None:
        if name in PLAINTEXT_MECHANISMS:
            raise SieveError("plaintext authentication needs TLS", "ENCRYPT-NEEDED")
        raise SieveError(f"unsupported mechanism {name}")
    ip = s.conn.peer_ip
    limiter = s.ctx.auth_limiter
    if limiter.refused(ip):
        raise _locked_out()
    delay = limiter.delay(ip)
    if delay:
        await asyncio.sleep(delay)
    initial = _decode(str(cmd.args[1])) if len(cmd.args) == 2 else None
    step = await limiter.checked(ip, functools.partial(mech.step, initial), _locked_out)
    while isinstance(step, sasl.Challenge):
        # RFC 5804 §2.1: the challenge is a string of base64; the client answers with a string.
        s.send(quote(sasl.encode_challenge(step.data).decode("ascii")) + b"\r\n")
        await s.conn.writer.drain()
        line = await s.read_command()
        if line is None:
            s.closing = True
            return
        try:
            answer = parse_command(b"X " + line)
        except ParseError:
            raise SieveError("authentication failed: malformed response") from None
        if len(answer.args) != 1 or not isinstance(answer.args[0], str):
            raise SieveError("authentication failed: malformed response")
        if answer.args[0] == "*":
            raise SieveError("authentication cancelled")
        step = await limiter.checked(ip, functools.partial(mech.step, _decode(answer.args[0])), _locked_out)
    if isinstance(step, sasl.Failure):
        if not step.malformed:
            limiter.failure(ip)
        s.auth_attempts += 1
        metrics.login("managesieve", False)
        log.info("managesieve: %s: authentication failed", ip)
        raise SieveError("authentication failed", bye=s.auth_attempts >= s.cfg.max_auth_attempts)
    limiter.success(ip)
    metrics.login("managesieve", True)
    s.user = step.credentials
    s.state = State.AUTHENTICATED
    log.info("managesieve: %s: %s logged in", ip, step.credentials.address)
    code = None
    if step.final is not None:
        code = "SASL " + quote(sasl.encode_challenge(step.final).decode("ascii")).decode("ascii")
    s.send(response("OK", "authenticated", code))


def _decode(text: str) -> bytes:
    try:
        value = sasl.decode_response(text.encode("ascii"))
    except (sasl.SaslError, UnicodeEncodeError):
        raise SieveError("authentication failed: invalid base64") from None
    if value is None:
        raise SieveError("authentication cancelled")
    return value


async def cmd_unauthenticate(s: Session, cmd: Command) -> None:
    args(cmd)
    s.user = None
    s.state = State.NOT_AUTHENTICATED
    s.send(response("OK", "unauthenticated"))


def _check(s: Session, content: str) -> None:
    if len(content.encode("utf-8")) > s.cfg.max_script_size:
        raise SieveError("script too large", "QUOTA/MAXSIZE")
    try:
        compile_script(content)
    except SieveSyntaxError as exc:
        raise SieveError(str(exc)) from None


async def cmd_havespace(s: Session, cmd: Command) -> None:
    name, size = args(cmd, str, int)
    writable_name(name)
    assert isinstance(size, int)
    if size > s.cfg.max_script_size:
        raise SieveError("script too large", "QUOTA/MAXSIZE")
    scripts = await s.ctx.store.list_sieve_scripts(s.user_id)
    if name not in {x.name for x in scripts} and len(scripts) >= s.cfg.max_scripts:
        raise SieveError("too many scripts", "QUOTA/MAXSCRIPTS")
    s.send(response("OK", "putscript would succeed"))


async def cmd_putscript(s: Session, cmd: Command) -> None:
    name_arg, content = args(cmd, str, str)
    name = writable_name(name_arg)
    assert isinstance(content, str)
    _check(s, content)
    try:
        await s.ctx.store.put_sieve_script(s.user_id, name, content, s.cfg.max_scripts, s.cfg.max_script_size)
    except QuotaExceeded as exc:
        raise SieveError(str(exc), "QUOTA/MAXSCRIPTS" if "many" in str(exc) else "QUOTA/MAXSIZE") from None
    s.send(response("OK", "putscript completed"))


async def cmd_checkscript(s: Session, cmd: Command) -> None:
    (content,) = args(cmd, str)
    assert isinstance(content, str)
    _check(s, content)
    s.send(response("OK", "script is valid"))


async def cmd_listscripts(s: Session, cmd: Command) -> None:
    args(cmd)
    out = b""
    for script in await s.ctx.store.list_sieve_scripts(s.user_id):
        out += quote(script.name) + (b" ACTIVE" if script.active else b"") + b"\r\n"
    s.send(out + response("OK", "listscripts completed"))


async def cmd_setactive(s: Session, cmd: Command) -> None:
    (name,) = args(cmd, str)
    assert isinstance(name, str)
    # RFC 5804 §2.8: the empty name deactivates every script.
    await s.ctx.store.set_active_sieve_script(s.user_id, writable_name(name) if name else None)
    s.send(response("OK", "setactive completed"))


async def cmd_getscript(s: Session, cmd: Command) -> None:
    (name,) = args(cmd, str)
    script = await s.ctx.store.get_sieve_script(s.user_id, script_name(name))
    if script is None:
        raise SieveError("no such script", "NONEXISTENT")
    s.send(literal(script.content.encode("utf-8")) + b"\r\n" + response("OK", "getscript completed"))


async def cmd_deletescript(s: Session, cmd: Command) -> None:
    (name_arg,) = args(cmd, str)
    name = writable_name(name_arg)
    script = await s.ctx.store.get_sieve_script(s.user_id, name)
    if script is None:
        raise SieveError("no such script", "NONEXISTENT")
    if script.active:
        raise SieveError("the active script cannot be deleted", "ACTIVE")  # RFC 5804 §2.10
    await s.ctx.store.delete_sieve_script(s.user_id, name)
    s.send(response("OK", "deletescript completed"))


async def cmd_renamescript(s: Session, cmd: Command) -> None:
    old, new = args(cmd, str, str)
    await s.ctx.store.rename_sieve_script(s.user_id, writable_name(old), writable_name(new))
    s.send(response("OK", "renamescript completed"))


_ANY: dict[str, Handler] = {"CAPABILITY": cmd_capability, "NOOP": cmd_noop, "LOGOUT": cmd_logout}
TABLES: dict[State, dict[str, Handler]] = {
    State.NOT_AUTHENTICATED: {**_ANY, "STARTTLS": cmd_starttls, "AUTHENTICATE": cmd_authenticate},
    State.AUTHENTICATED: {
        **_ANY,
        "HAVESPACE": cmd_havespace,
        "PUTSCRIPT": cmd_putscript,
        "CHECKSCRIPT": cmd_checkscript,
        "LISTSCRIPTS": cmd_listscripts,
        "SETACTIVE": cmd_setactive,
        "GETSCRIPT": cmd_getscript,
        "DELETESCRIPT": cmd_deletescript,
        "RENAMESCRIPT": cmd_renamescript,
        "UNAUTHENTICATE": cmd_unauthenticate,
    },
}


def _locked_out() -> SieveError:
    return SieveError("too many failed logins from your address, try later", "TRYLATER", bye=True)
