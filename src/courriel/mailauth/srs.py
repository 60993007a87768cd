"""Sender Rewriting Scheme for forwarded mail (the SRS0 form of Shevek's SRS paper).

A message relayed for an alias keeps SPF passing at the destination by carrying a reverse
path in our own domain: ``SRS0=HHHH=TT=orig-domain=orig-local@srs-domain``, where TT is the
day (base32, modulo 1024) and HHHH an HMAC (base32) of it, the domain and the local part, so that
bounces can be routed back to the original sender and nobody else can use the address as a
relay. Addresses are valid for :data:`MAX_AGE_DAYS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from pathlib import Path

from courriel.config import Config

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
MAX_AGE_DAYS = 21


def _day(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 86400) % 1024


def _stamp(day: int) -> str:
    return ALPHABET[day >> 5] + ALPHABET[day & 31]


class Srs:
    def __init__(self, secret: bytes, domain: str) -> None:
        self.secret = secret
        self.domain = domain.lower()

    @classmethod
    def from_config(cls, cfg: Config) -> Srs:
        secret = cfg.outbound.srs_secret.encode()
        if not secret:
            path = cfg.path("srs.key")
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(str(path) + ".tmp")
                tmp.write_text(secrets.token_hex(32) + "\n")
                tmp.chmod(0o600)
                tmp.replace(path)
            secret = path.read_text().strip().encode()
        return cls(secret, cfg.outbound.srs_domain or cfg.server.domain)

    def _hash(self, stamp: str, domain: str, local: str) -> str:
        # Base32 rather than the paper's base64: no "/" or "+" in the local part, and the
        # comparison can ignore case (some MTAs change it).
        mac = hmac.new(self.secret, f"{stamp}{domain}{local}".lower().encode(), hashlib.sha1).digest()
        return base64.b32encode(mac).decode()[:4]

    def forward(self, sender: str, now: float | None = None) -> str:
        """The reverse path to use when relaying mail from ``sender``; ``""`` stays ``""``."""
        if not sender:
            return ""
        local, _, domain = sender.rpartition("@")
        if domain.lower() == self.domain:
            return sender
        stamp = _stamp(_day(now))
        return f"SRS0={self._hash(stamp, domain, local)}={stamp}={domain}={local}@{self.domain}"

    def reverse(self, address: str, now: float | None = None) -> str | None:
        """The original sender of an SRS address of ours, or None (not ours, forged, expired)."""
        local, _, domain = address.rpartition("@")
        if domain.lower() != self.domain or not local.upper().startswith("SRS0="):
            return None
        parts = local[5:].split("=", 3)
        if len(parts) != 4:
            return None
        mac, stamp, orig_domain, orig_local = parts
        if len(stamp) != 2 or any(c not in ALPHABET for c in stamp.upper()):
            return None
        if not hmac.compare_digest(mac.upper().encode(), self._hash(stamp.upper(), orig_domain, orig_local).encode()):
            return None
        day = ALPHABET.index(stamp.upper()[0]) << 5 | ALPHABET.index(stamp.upper()[1])
        if (_day(now) - day) % 1024 > MAX_AGE_DAYS:
            return None
        return f"{orig_local}@{orig_domain}"
