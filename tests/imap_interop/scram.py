"""A SCRAM-SHA-256 client (RFC 5802, RFC 7677) as an imaplib ``authenticate`` callback.

Written from the RFC for the tests, independent of courriel.auth.sasl, so a bug shared by
our server and our client cannot pass unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


class ScramSha256:
    """Called by imaplib with each decoded server challenge; returns the next client message."""

    def __init__(self, user: str, password: str, nonce: str | None = None) -> None:
        self.user = user.replace("=", "=3D").replace(",", "=2C")
        self.password = password
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.client_first_bare = f"n={self.user},r={self.nonce}"
        self.server_signature = b""
        self.step = 0
        self.verified = False

    def __call__(self, challenge: bytes) -> bytes | None:
        self.step += 1
        if self.step == 1:
            return ("n,," + self.client_first_bare).encode()
        if self.step == 2:
            return self._final(challenge.decode())
        # server-final-message: verify the server knew our password too (RFC 5802 §3)
        attrs = dict(kv.split("=", 1) for kv in challenge.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.server_signature:
            return None  # imaplib sends "*" and the exchange fails
        self.verified = True
        return b""

    def _final(self, server_first: str) -> bytes:
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        assert nonce.startswith(self.nonce), "server nonce must extend ours"
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.client_first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.server_signature = hmac.digest(server_key, auth_message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
