"""Password secrets: an argon2id hash (PLAIN, LOGIN) and SCRAM-SHA-256 keys (RFC 5802, RFC 7677).

Both are derived when the password is set; the password itself is never stored. SCRAM
keys: SaltedPassword = Hi(password, salt, i) (PBKDF2-HMAC-SHA-256), ClientKey =
HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey), ServerKey =
HMAC(SaltedPassword, "Server Key") (RFC 5802 §3).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import time
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: RFC 7677 §4 recommends at least 4096 iterations.
SCRAM_ITERATIONS = 4096
MAX_PASSWORD = 1024

# Moderate argon2id parameters: ~20 ms on the 2-core machines we build on.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True, slots=True)
class PasswordSecrets:
    password_hash: str
    scram_salt: bytes
    scram_iterations: int
    scram_stored_key: bytes
    scram_server_key: bytes


def saslprep(password: str) -> str:
    """A close approximation of SASLprep (RFC 4013): map spaces, drop mapped-to-nothing, NFKC."""
    mapped = []
    for ch in password:
        if ch in "\u00ad\u034f\u180b\u180c\u180d\u200b\u200c\u200d\u2060\ufe00\ufeff":
            continue
        if unicodedata.category(ch) == "Zs":
            mapped.append(" ")
        else:
            mapped.append(ch)
    return unicodedata.normalize("NFKC", "".join(mapped))


def scram_keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) for SCRAM-SHA-256."""
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def derive(password: str) -> PasswordSecrets:
    if not password:
        raise ValueError("empty password")
    if len(password) > MAX_PASSWORD:
        raise ValueError("password too long")
    salt = os.urandom(16)
    stored, server = scram_keys(password, salt, SCRAM_ITERATIONS)
    return PasswordSecrets(_hasher.hash(password), salt, SCRAM_ITERATIONS, stored, server)


def verify(password_hash: str, password: str) -> bool:
    """Check a password against its argon2id hash, in constant time for a given hash."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password(length: int = 20) -> str:
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


@functools.cache
def dummy_hash() -> str:
    """A real hash of nothing, to verify against when the user does not exist (same cost)."""
    return str(_hasher.hash(secrets.token_hex(16)))


class VerifiedCache:
    """Remembers recent successful password checks so a client that logs in again and again
    (IMAP and POP3 clients reconnect constantly) costs an HMAC, not an argon2 run each time.

    An entry is keyed by the argon2 hash it was verified against, so a password change
    (a new hash) misses; it holds HMAC-SHA-256(process key, password), never the password;
    it expires after ``ttl`` seconds. Failures are never cached: every wrong guess still
    pays the full argon2 cost. This is what Dovecot's auth cache does for hashed passwords.
    """

    def __init__(self, ttl: float = 3600.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: dict[str, tuple[bytes, float]] = {}

    def _mac(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def hit(self, password_hash: str, password: str) -> bool:
        entry = self._entries.get(password_hash)
        if entry is None:
            return False
        mac, expires = entry
        if time.monotonic() > expires:
            del self._entries[password_hash]
            return False
        return hmac.compare_digest(mac, self._mac(password))

    def add(self, password_hash: str, password: str) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[password_hash] = (self._mac(password), time.monotonic() + self.ttl)


#: The process-wide cache used by :func:`courriel.auth.sasl.check_password`.
verified_cache = VerifiedCache()
