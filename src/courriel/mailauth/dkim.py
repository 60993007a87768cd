"""DKIM (RFC 6376) with dkimpy: keys per local domain, signing of outgoing mail, verification.

Keys live in ``<dkim_dir>/<domain>/<selector>.<algorithm>.key`` (``courriel dkim keygen``
writes one ed25519 key, RFC 8463, and one RSA key, so that verifiers that only know
rsa-sha256 still find a signature). A domain with keys gets both signatures on every
message it sends.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

log = logging.getLogger("courriel.dkim")

#: Header fields signed (when present), RFC 6376 §5.4.1; From is required.
SIGNED_HEADERS = [
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
    b"references", b"mime-version", b"content-type", b"content-transfer-encoding", b"list-id",
    b"list-unsubscribe",
]  # fmt: skip

ALGORITHMS = {"ed25519": b"ed25519-sha256", "rsa": b"rsa-sha256"}


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: str  # ed25519 or rsa
    private: bytes  # what dkimpy takes: base64 seed (ed25519) or PEM (rsa)

    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def generate(folder: Path, domain: str, selector_prefix: str | None = None) -> list[tuple[DkimKey, str]]:
    """Make an ed25519 and an RSA-2048 key for ``domain``; returns each with its TXT record."""
    prefix = selector_prefix or time.strftime("%Y%m")
    out: list[tuple[DkimKey, str]] = []
    target = folder / domain.lower()
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    ed = ed25519.Ed25519PrivateKey.generate()
    seed = ed.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = DkimKey(domain.lower(), f"{prefix}e", "ed25519", base64.b64encode(seed))
    out.append((key, f"v=DKIM1; k=ed25519; p={base64.b64encode(pub).decode()}"))
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = r.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    der = r.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    key = DkimKey(domain.lower(), f"{prefix}r", "rsa", pem)
    out.append((key, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"))
    for k, _ in out:
        path = target / f"{k.selector}.{k.algorithm}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(k.private)
    return out


def public_record(key: DkimKey) -> str:
    """The TXT record of a stored key."""
    if key.algorithm == "ed25519":
        seed = base64.b64decode(key.private)
        pub = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    priv = serialization.load_pem_private_key(key.private, None)
    der = priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def load_keys(folder: Path, domain: str) -> list[DkimKey]:
    target = folder / domain.lower()
    keys: list[DkimKey] = []
    if not target.is_dir():
        return keys
    for path in sorted(target.glob("*.key")):
        selector, _, algorithm = path.stem.rpartition(".")
        if algorithm in ALGORITHMS and selector:
            keys.append(DkimKey(domain.lower(), selector, algorithm, path.read_bytes().strip()))
    # ed25519 first, RSA outermost: RFC 8463 §5 has no order, but keep it stable.
    return sorted(keys, key=lambda k: (k.algorithm != "ed25519", k.selector))


class DkimSigner:
    """Signs with the keys of the sender's domain; re-reads a domain's folder every minute."""

    def __init__(self, folder: Path, ttl: float = 60.0) -> None:
        self.folder = folder
        self.ttl = ttl
        self.cache: dict[str, tuple[float, list[DkimKey]]] = {}

    def keys(self, domain: str) -> list[DkimKey]:
        domain = domain.lower()
        hit = self.cache.get(domain)
        now = time.monotonic()
        if hit is None or hit[0] < now:
            hit = (now + self.ttl, load_keys(self.folder, domain))
            self.cache[domain] = hit
        return hit[1]

    def sign(self, data: bytes, domain: str) -> bytes | None:
        """``data`` with DKIM-Signature fields prepended, or None when ``domain`` has no key."""
        keys = self.keys(domain)
        if not keys:
            return None
        fields = b""
        for key in keys:
            try:
                fields += dkim.sign(
                    data, key.selector.encode(), key.domain.encode(), key.private,
                    include_headers=SIGNED_HEADERS, signature_algorithm=ALGORITHMS[key.algorithm],
                    linesep=b"\r\n", canonicalize=(b"relaxed", b"relaxed"),
                )  # fmt: skip
            except dkim.DKIMException as exc:
                log.warning("dkim: cannot sign for %s with %s: %s", domain, key.selector, exc)
        return fields + data if fields else None


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: str  # pass, fail, neutral, none, temperror, permerror (RFC 8601 §2.7.1)
    domain: str | None  # the d= of the signature
    selector: str | None = None
    algorithm: str | None = None
    reason: str | None = None


def verify(data: bytes, txt: Callable[[str], list[bytes]]) -> list[DkimResult]:
    """Verify every DKIM-Signature of ``data`` (blocking: run in a thread)."""

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes | None:
        host = name.decode() if isinstance(name, bytes) else name
        records = txt(host.rstrip("."))
        return records[0] if records else None

    d = dkim.DKIM(data)
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    if count == 0:
        return [DkimResult("none", None)]
    out: list[DkimResult] = []
    for idx in range(min(count, 5)):
        d = dkim.DKIM(data)
        try:
            ok = d.verify(idx=idx, dnsfunc=dnsfunc)
            sig = d.signature_fields
            result = "pass" if ok else "fail"
            reason = None
        except dkim.ValidationError as exc:  # body hash mismatch, bad signature, bad tags
            sig, result, reason = getattr(d, "signature_fields", {}) or {}, "fail", str(exc)
        except dkim.KeyFormatError as exc:
            sig, result, reason = getattr(d, "signature_fields", {}) or {}, "permerror", str(exc)
        except dkim.DKIMException as exc:
            sig, result, reason = getattr(d, "signature_fields", {}) or {}, "fail", str(exc)
        except Exception as exc:  # DNS trouble in the lookup function
            sig, result, reason = getattr(d, "signature_fields", {}) or {}, "temperror", str(exc)
        domain = sig.get(b"d")
        sel = sig.get(b"s")
        alg = sig.get(b"a")
        out.append(DkimResult(
            result, domain.decode(errors="replace").lower() if domain else None,
            sel.decode(errors="replace") if sel else None, alg.decode(errors="replace") if alg else None, reason,
        ))  # fmt: skip
    return out
