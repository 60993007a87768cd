"""Any-state and not-authenticated commands: CAPABILITY, NOOP, LOGOUT, ID, STARTTLS,
AUTHENTICATE, LOGIN (RFC 9051 §6.1, §6.2), ENABLE (RFC 5161), ID (RFC 2971)."""

from __future__ import annotations

import asyncio
import base64
import functools
import logging

from courriel import __version__, metrics
from courriel.auth.sasl import (
    Challenge,
    Failure,
    SaslError,
    Success,
    check_password,
    decode_response,
    new_mechanism,
)
from courriel.imap.errors import Bad, No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import Authenticate, Command, Enable, Login
from courriel.imap.session import Session, State
from courriel.store.api import Credentials

log = logging.getLogger("courriel.imap")


async def capability(s: Session, cmd: Command) -> str:
    s.untagged("CAPABILITY " + s.capabilities())
    return "CAPABILITY completed"


async def noop(s: Session, cmd: Command) -> str:
    return f"{cmd.name} completed"


async def logout(s: Session, cmd: Command) -> str:
    s.untagged("BYE logging out")
    s.close_selected()
    s.state = State.LOGOUT
    return "LOGOUT completed"


async def id_(s: Session, cmd: Command) -> str:
    # RFC 2971 §3.3; the client's fields are only logged (they carry no secret).
    s.untagged(b'ID ("name" "courriel" "version" ' + encoder.string(__version__) + b")")
    return "ID completed"


async def starttls(s: Session, cmd: Command) -> str:
    if s.conn.tls or not s.settings.starttls:
        raise Bad("TLS is already active")
    s.out += f"{cmd.tag} OK begin TLS negotiation now\r\n".encode()
    await s.flush()
    dropped = await s.conn.start_tls(s.settings.ctx.ssl_context())
    if dropped:  # RFC 9051 §6.2.1: no command injection across the TLS boundary
        log.warning("imap: %s sent %d octets after STARTTLS; discarded", s.conn.peer_ip, dropped)
    return ""  # the tagged reply went out before the handshake


def _check_limits(s: Session) -> None:
    if not s.plaintext_ok:
        raise No("authentication requires TLS (use STARTTLS)", "PRIVACYREQUIRED")
    if s.settings.ctx.auth_limiter.refused(s.conn.peer_ip):
        raise _locked_out()


def _locked_out() -> No:
    return No("too many failed authentications; try again later", "UNAVAILABLE")


async def _logged_in(s: Session, cred: Credentials) -> str:
    ip = s.conn.peer_ip
    s.settings.ctx.auth_limiter.success(ip)
    s.user_id = cred.user_id
    if not s.settings.claim_user(s, cred.user_id):
        s.user_id = 0
        raise No("too many connections for this user", "LIMIT")
    s.address = cred.address
    s.state = State.AUTHENTICATED
    s.attach(cred.user_id)
    metrics.login("imap", True)
    log.info("imap: %s logged in from %s", cred.address, ip)
    return f"[CAPABILITY {s.capabilities()}] logged in"


async def _failed(s: Session) -> None:
    ip = s.conn.peer_ip
    s.settings.ctx.auth_limiter.failure(ip)
    metrics.login("imap", False)
    log.info("imap: authentication failed from %s", ip)
    raise No("invalid credentials", "AUTHENTICATIONFAILED")


async def login(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, Login)
    _check_limits(s)
    delay = s.settings.ctx.auth_limiter.delay(s.conn.peer_ip)
    if delay:
        await asyncio.sleep(delay)
    # check_password keeps the process-wide cache of verified logins (auth.passwords); one
    # check at a time per address, its verdict recorded before any await (auth.limits).
    check = functools.partial(check_password, s.store, cmd.args.username, cmd.args.password)
    cred = await s.settings.ctx.auth_limiter.checked(s.conn.peer_ip, check, _locked_out)
    if cred is None:
        await _failed(s)
        raise AssertionError("unreachable")
    return await _logged_in(s, cred)


async def authenticate(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, Authenticate)
    _check_limits(s)
    mech = new_mechanism(cmd.args.mechanism, s.store, s.settings.mechanisms)
    if mech is None:
        raise No(f"unsupported mechanism {cmd.args.mechanism}", "CANNOT")
    await asyncio.sleep(s.settings.ctx.auth_limiter.delay(s.conn.peer_ip))
    try:
        response = None if cmd.args.initial is None else decode_response(cmd.args.initial)
    except SaslError as exc:
        raise Bad(str(exc)) from None
    steps = 0
    while True:
        step = await s.settings.ctx.auth_limiter.checked(
            s.conn.peer_ip, functools.partial(mech.step, response), _locked_out
        )
        steps += 1
        if isinstance(step, Success):
            if step.final is not None:
                # RFC 9051 §6.2.2: additional success data as a continuation, then an empty line.
                await _exchange(s, step.final)
            return await _logged_in(s, step.credentials)
        if isinstance(step, Failure):
            if step.malformed:
                s.settings.ctx.auth_limiter.failure(s.conn.peer_ip)
                raise Bad(step.reason)
            await _failed(s)
        assert isinstance(step, Challenge)
        if steps > 10:
            raise Bad("too many SASL steps")
        line = await _exchange(s, step.data)
        try:
            response = decode_response(line)
        except SaslError as exc:
            raise Bad(str(exc)) from None
        if response is None:
            raise Bad("authentication cancelled")  # RFC 9051 §6.2.2


async def _exchange(s: Session, data: bytes) -> bytes:
    s.out += b"+ " + base64.b64encode(data) + b"\r\n"
    await s.flush()
    line, _tail = await s._read_line()
    if line is None:
        raise Bad("SASL response too long")
    return line.rstrip(b"\r\n")


async def enable(s: Session, cmd: Command) -> str:
    # RFC 5161; ENABLE CONDSTORE / QRESYNC (RFC 7162 §3.1, §3.2.3); UTF8=ACCEPT (RFC 6855 §3)
    assert isinstance(cmd.args, Enable)
    enabled = []
    for cap in cmd.args.capabilities:
        if cap == "IMAP4REV2" and not s.rev2:
            s.rev2 = s.utf8 = True
            enabled.append("IMAP4rev2")
        elif cap == "CONDSTORE" and not s.condstore:
            s.enable_condstore()
            enabled.append("CONDSTORE")
        elif cap == "QRESYNC" and not s.qresync:
            s.enable_condstore()  # QRESYNC implies CONDSTORE (RFC 7162 §3.2.3)
            s.qresync = True
            enabled.append("QRESYNC")
        elif cap == "UTF8=ACCEPT" and not s.utf8:
            s.utf8 = True
            enabled.append("UTF8=ACCEPT")
    if enabled:
        s.untagged("ENABLED " + " ".join(enabled))
    else:
        s.untagged("ENABLED")
    return "ENABLE completed"
