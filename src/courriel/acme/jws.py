"""The account key and JSON Web Signatures for ACME requests (RFC 8555 §6.2, RFC 7515).

The account key is ECDSA P-256 (ES256), kept in ``DATA/acme/account.key`` (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: not an EC private key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return key


class AccountKey:
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        numbers = key.public_key().public_numbers()
        # Members in lexicographic order: this is also the thumbprint input (RFC 7638 §3.2).
        self.jwk: dict[str, str] = {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }

    def thumbprint(self) -> str:
        canonical = json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()
        return b64url(hashlib.sha256(canonical).digest())

    def key_authorization(self, token: str) -> str:
        """What an HTTP-01 challenge answers (RFC 8555 §8.1)."""
        return f"{token}.{self.thumbprint()}"

    def sign(self, url: str, nonce: str, payload: Any, kid: str | None) -> bytes:
        """A flattened JWS (RFC 8555 §6.2): ``payload`` None is POST-as-GET (empty payload)."""
        protected: dict[str, Any] = {"alg": "ES256", "nonce": nonce, "url": url}
        if kid is None:
            protected["jwk"] = self.jwk
        else:
            protected["kid"] = kid
        p64 = b64url(json.dumps(protected).encode())
        body64 = "" if payload is None else b64url(json.dumps(payload).encode())
        der = self.key.sign(f"{p64}.{body64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWA §3.4: R || S
        return json.dumps({"protected": p64, "payload": body64, "signature": b64url(signature)}).encode()
