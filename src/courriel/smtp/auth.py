"""STARTTLS (RFC 3207) and AUTH (RFC 4954) for the SMTP session.

- STARTTLS discards whatever the client pipelined after the command (RFC 3207 §4.2, no
  command injection) and forgets the session's state: the client must EHLO again.
- AUTH runs a SASL mechanism from :mod:`courriel.auth.sasl` (SCRAM-SHA-256, PLAIN, LOGIN),
  only over TLS unless the listener allows plaintext (submission.allow_plaintext_auth, for
  test tools on loopback). Failures are counted per client address by the process-wide
  :class:`AuthLimiter` (each one slows the next answer; too many lock the address out) and
  per session (too many close it). Responses are never logged: they carry passwords.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from typing import Any

from courriel import metrics
from courriel.auth.sasl import (
    Challenge,
    Failure,
    SaslError,
    Success,
    decode_response,
    encode_challenge,
    new_mechanism,
)
from courriel.smtp.protocol import SmtpError, err
from courriel.smtp.session import Session, State

log = logging.getLogger("courriel.smtp")

#: RFC 4954 §4: a client response line may be 12288 octets.
MAX_RESPONSE_LINE = 12288


async def cmd_starttls(s: Session, arg: str) -> None:
    if s.tls or s.policy.ssl_context is None:
        raise err(503, "5.5.1", "TLS already active" if s.tls else "STARTTLS not available")
    if arg.strip():
        raise err(501, "5.5.4", "STARTTLS takes no argument")
    # Stop reading before the 220 leaves: the client's TLS ClientHello must not land in the
    # plaintext buffer (which start_tls discards). What was read before is dropped (§4.2).
    transport: Any = s.conn.writer.transport  # asyncio's or uvloop's (not a ReadTransport subclass)
    transport.pause_reading()
    dropped = s.input.discard()
    s.reply(220, "2.0.0", "Ready to start TLS")
    await s.out.flush()
    try:
        dropped += await s.conn.start_tls(s.policy.ssl_context())
    except (ssl.SSLError, OSError, TimeoutError) as exc:
        log.info("%s: %s: TLS handshake failed: %r", s.policy.name, s.conn.peer_ip, exc)
        s.closing = True
        return
    if dropped:
        log.warning(
            "%s: %s: discarded %d bytes sent before the TLS handshake (RFC 3207 §4.2)",
            s.policy.name, s.conn.peer_ip, dropped,
        )  # fmt: skip
    # RFC 3207 §4.2: forget everything learned before TLS; the client starts with EHLO.
    s.out.writer = s.conn.writer
    s.reset_transaction(None)
    s.state, s.helo, s.esmtp = State.FRESH, "", False


def _locked_out() -> SmtpError:
    return err(454, "4.7.0", "Too many authentication failures from your address, try again later")


async def cmd_auth(s: Session, arg: str) -> None:
    if s.auth_user is not None:
        raise err(503, "5.5.1", "Already authenticated")
    if not s.auth_allowed:
        raise err(538, "5.7.11", "Encryption required for requested authentication mechanism")
    ip = s.conn.peer_ip
    if s.auth_limiter.refused(ip):
        raise _locked_out()
    name, _, initial = arg.strip().partition(" ")
    mech = new_mechanism(name, s.store)
    if mech is None:
        raise err(504, "5.5.4", "Unrecognized authentication type")
    try:
        response: bytes | None = decode_response(initial.encode()) if initial else None
    except SaslError as exc:
        raise err(501, "5.5.2", f"Bad initial response: {exc}") from None
    if initial.strip() == "*":
        raise err(501, "5.0.0", "Authentication cancelled")
    while True:
        # One check at a time per address (auth.limits): the verdict below is recorded before
        # any await, so a concurrent attempt from the address sees it.
        step = await s.auth_limiter.checked(ip, functools.partial(mech.step, response), _locked_out)
        if isinstance(step, Challenge):
            response = await _challenge(s, step.data)
            continue
        break
    if isinstance(step, Failure):
        if step.malformed:
            raise err(501, "5.5.2", f"Authentication failed: {step.reason}")
        delay = s.auth_limiter.delay(ip)
        s.auth_limiter.failure(ip)
        metrics.login(s.policy.name, False)
        s.auth_failures += 1
        log.info("%s: %s: authentication failed (%s)", s.policy.name, ip, mech.name)
        if delay:
            await asyncio.sleep(delay)
        close = s.auth_failures >= s.policy.limits.max_auth_attempts
        if close:
            s.reply(535, "5.7.8", "Authentication credentials invalid")
            raise err(421, "4.7.0", "Too many authentication failures, closing", close=True)
        raise err(535, "5.7.8", "Authentication credentials invalid")
    assert isinstance(step, Success)
    if step.final is not None:
        # RFC 4954 §4: additional data with success travels in a 334; the client answers empty.
        last = await _challenge(s, step.final)
        if last:
            raise err(501, "5.5.2", "Unexpected data after authentication")
    s.auth_limiter.success(ip)
    metrics.login(s.policy.name, True)
    s.auth_user = step.credentials.address
    log.info("%s: %s: authenticated as %s (%s)", s.policy.name, ip, s.auth_user, mech.name)
    s.reply(235, "2.7.0", "Authentication successful")


async def _challenge(s: Session, data: bytes) -> bytes:
    """Send a 334 challenge and read the client's response (base64); '*' cancels."""
    s.out.raw(b"334 " + encode_challenge(data) + b"\r\n")
    line = await s.input.line(MAX_RESPONSE_LINE)
    if line is None:
        raise err(500, "5.5.6", "Authentication response too long")
    try:
        response = decode_response(line)
    except SaslError as exc:
        raise err(501, "5.5.2", f"Bad response: {exc}") from None
    if response is None:
        raise err(501, "5.0.0", "Authentication cancelled")
    return response
