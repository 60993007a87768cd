"""Server side of the SASL mechanisms shared by SMTP, IMAP and POP3: PLAIN, LOGIN, SCRAM-SHA-256.

A mechanism is a small state machine: :meth:`Mechanism.step` takes the client's (decoded)
response and returns a :class:`Challenge` to send, a :class:`Success` or a :class:`Failure`.
Each protocol frames the exchange its own way (SMTP ``334``, IMAP and POP3 ``+``), decodes
base64, and handles the client's ``*`` cancellation; see :func:`decode_response`.

Passwords are checked against the argon2id hash in a worker thread (it costs ~20 ms of CPU
on purpose); SCRAM never sees the password, only StoredKey and ServerKey (RFC 5802 §3).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from courriel.auth.passwords import dummy_hash, saslprep, verified_cache, verify
from courriel.store.api import Credentials, Store

MAX_RESPONSE = 8192
#: Mechanisms offered, in preference order.
MECHANISMS = ("SCRAM-SHA-256", "PLAIN", "LOGIN")


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    credentials: Credentials
    #: Additional data with success (SCRAM's server-final message), or None.
    final: bytes | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str
    #: True when the client sent something malformed (protocols answer BAD / 501), False for
    #: a wrong user name or password (NO / 535).
    malformed: bool = False


Step = Challenge | Success | Failure


class SaslError(ValueError):
    pass


def decode_response(line: bytes) -> bytes | None:
    """A client's base64 response line; None when it is ``*`` (cancel). Raises SaslError."""
    line = line.strip()
    if line == b"*":
        return None
    if len(line) > MAX_RESPONSE:
        raise SaslError("response too long")
    if line == b"=":  # an empty initial response (RFC 4954 §4, RFC 4959)
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError("invalid base64") from None


def encode_challenge(data: bytes) -> bytes:
    return base64.b64encode(data)


async def check_password(store: Store, username: str, password: str) -> Credentials | None:
    cred = await store.get_credentials(username)
    if cred is None or cred.password_hash is None:
        # Spend the same work as a real check, so timing does not reveal which users exist.
        await asyncio.to_thread(verify, dummy_hash(), password)
        return None
    if verified_cache.hit(cred.password_hash, password):
        return cred
    ok = await asyncio.to_thread(verify, cred.password_hash, password)
    if ok:
        verified_cache.add(cred.password_hash, password)
    return cred if ok else None


class Mechanism:
    name = ""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def step(self, response: bytes | None) -> Step:
        """Advance with the client's response (None for the first step without initial response)."""
        raise NotImplementedError


class Plain(Mechanism):
    """RFC 4616: [authzid] NUL authcid NUL passwd."""

    name = "PLAIN"

    async def step(self, response: bytes | None) -> Step:
        if response is None:
            return Challenge(b"")
        parts = response.split(b"\0")
        if len(parts) != 3:
            return Failure("malformed PLAIN response", malformed=True)
        try:
            authzid, authcid, passwd = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            return Failure("PLAIN response is not UTF-8", malformed=True)
        if not authcid or not passwd:
            return Failure("empty user name or password", malformed=True)
        cred = await check_password(self.store, authcid, passwd)
        if cred is None:
            return Failure("invalid credentials")
        if authzid and authzid.lower() != cred.address.lower():
            return Failure("not authorized to act as " + authzid)
        return Success(cred)


class Login(Mechanism):
    """The obsolete LOGIN mechanism (draft-murchison-sasl-login), still used by many clients."""

    name = "LOGIN"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._user: str | None = None

    async def step(self, response: bytes | None) -> Step:
        if self._user is None:
            if response is None or response == b"":
                return Challenge(b"Username:")
            try:
                self._user = response.decode("utf-8")
            except UnicodeDecodeError:
                return Failure("user name is not UTF-8", malformed=True)
            return Challenge(b"Password:")
        if response is None:
            return Failure("no password", malformed=True)
        try:
            password = response.decode("utf-8")
        except UnicodeDecodeError:
            return Failure("password is not UTF-8", malformed=True)
        cred = await check_password(self.store, self._user, password)
        return Success(cred) if cred is not None else Failure("invalid credentials")


class ScramSha256(Mechanism):
    """RFC 5802 with SHA-256 (RFC 7677); no channel binding (gs2 flags 'n' and 'y')."""

    name = "SCRAM-SHA-256"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._state = 0
        self._cred: Credentials | None = None
        self._client_first_bare = b""
        self._server_first = b""
        self._gs2 = b""
        self._nonce = b""

    async def step(self, response: bytes | None) -> Step:
        if self._state == 0:
            if response is None or response == b"":
                return Challenge(b"")
            return await self._client_first(response)
        if self._state == 1:
            return self._client_final(response or b"")
        return Failure("unexpected response", malformed=True)

    async def _client_first(self, msg: bytes) -> Step:
        # gs2-header = gs2-cbind-flag "," [ authzid ] ","
        parts = msg.split(b",", 2)
        if len(parts) != 3 or parts[0] not in (b"n", b"y") or (parts[1] and not parts[1].startswith(b"a=")):
            return Failure("unsupported or malformed gs2 header", malformed=True)
        self._gs2 = parts[0] + b"," + parts[1] + b","
        bare = parts[2]
        attrs = _attrs(bare)
        if attrs is None or "n" not in attrs or "r" not in attrs or "m" in attrs:
            return Failure("malformed client-first message", malformed=True)
        try:
            username = saslprep(_unescape(attrs["n"]).decode("utf-8"))
        except (UnicodeDecodeError, SaslError):
            return Failure("malformed user name", malformed=True)
        self._client_first_bare = bare
        cred = await self.store.get_credentials(username)
        if parts[1]:
            authzid = _unescape(parts[1][2:]).decode("utf-8", "replace")
            if cred is not None and authzid.lower() != cred.address.lower():
                cred = None
        self._cred = cred
        if cred is not None and cred.scram_salt and cred.scram_stored_key and cred.scram_server_key:
            salt, iterations = cred.scram_salt, cred.scram_iterations
        else:  # a made-up but stable salt, so unknown users look like known ones
            salt = hashlib.sha256(b"courriel-unknown-user" + username.encode()).digest()[:16]
            iterations = 4096
            self._cred = None
        self._nonce = attrs["r"] + base64.b64encode(secrets.token_bytes(18))
        self._server_first = b"r=" + self._nonce + b",s=" + base64.b64encode(salt) + b",i=" + str(iterations).encode()
        self._state = 1
        return Challenge(self._server_first)

    def _client_final(self, msg: bytes) -> Step:
        self._state = 2
        without_proof, sep, proof_part = msg.rpartition(b",p=")
        if not sep:
            return Failure("malformed client-final message", malformed=True)
        attrs = _attrs(without_proof)
        if attrs is None or attrs.get("c") is None or attrs.get("r") != self._nonce:
            return Failure("nonce or channel binding mismatch", malformed=True)
        try:
            cbind = base64.b64decode(attrs["c"], validate=True)
            proof = base64.b64decode(proof_part, validate=True)
        except (binascii.Error, ValueError):
            return Failure("invalid base64 in client-final message", malformed=True)
        if cbind != self._gs2:
            return Failure("channel binding mismatch", malformed=True)
        cred = self._cred
        if cred is None or cred.scram_stored_key is None or cred.scram_server_key is None:
            return Failure("invalid credentials")
        auth_message = self._client_first_bare + b"," + self._server_first + b"," + without_proof
        signature = hmac.new(cred.scram_stored_key, auth_message, hashlib.sha256).digest()
        if len(proof) != len(signature):
            return Failure("invalid credentials")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), cred.scram_stored_key):
            return Failure("invalid credentials")
        server_sig = hmac.new(cred.scram_server_key, auth_message, hashlib.sha256).digest()
        return Success(cred, b"v=" + base64.b64encode(server_sig))


def _attrs(msg: bytes) -> dict[str, bytes] | None:
    out: dict[str, bytes] = {}
    for item in msg.split(b","):
        if len(item) < 2 or item[1:2] != b"=":
            return None
        out[item[:1].decode("latin-1")] = item[2:]
    return out


def _unescape(name: bytes) -> bytes:
    # RFC 5802 §5.1: "=2C" is ",", "=3D" is "="; any other "=" is an error.
    out = name.replace(b"=2C", b",").replace(b"=3D", b"=")
    if b"=" in name.replace(b"=2C", b"").replace(b"=3D", b""):
        raise SaslError("bad escape in user name")
    return out


_MECHS: dict[str, type[Mechanism]] = {m.name: m for m in (Plain, Login, ScramSha256)}


def new_mechanism(name: str, store: Store, allowed: tuple[str, ...] = MECHANISMS) -> Mechanism | None:
    """A fresh mechanism by (case-insensitive) name, or None when not offered."""
    name = name.upper()
    if name not in allowed:
        return None
    cls = _MECHS.get(name)
    return cls(store) if cls is not None else None

