"""The ACME protocol (RFC 8555) over httpx: directory, nonces, account, order, HTTP-01
challenges, finalize with a CSR, certificate download."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from courriel.acme.jws import AccountKey, b64url

log = logging.getLogger("courriel.acme")

#: How many times a request is retried with a fresh nonce after badNonce (RFC 8555 §6.5).
NONCE_RETRIES = 5
#: Polls of an authorization or order before giving up.
MAX_POLLS = 60


class AcmeError(Exception):
    """A problem document from the CA (RFC 8555 §6.7) or a protocol failure."""

    def __init__(self, detail: str, kind: str = "") -> None:
        super().__init__(f"{detail} ({kind})" if kind else detail)
        self.kind = kind


@dataclass
class Order:
    url: str
    body: dict[str, Any]


def _problem(resp: httpx.Response) -> AcmeError:
    try:
        doc = resp.json()
    except ValueError:
        return AcmeError(f"HTTP {resp.status_code} from {resp.request.url}")
    if not isinstance(doc, dict):
        return AcmeError(f"HTTP {resp.status_code} from {resp.request.url}")
    detail = str(doc.get("detail") or f"HTTP {resp.status_code}")
    for sub in doc.get("subproblems") or []:
        if isinstance(sub, dict):
            detail += f"; {sub.get('detail', '')}"
    return AcmeError(detail, str(doc.get("type", "")))


def _retry_after(resp: httpx.Response, default: float) -> float:
    value = resp.headers.get("Retry-After", "")
    return min(float(value), 60.0) if value.isdigit() else default


class AcmeClient:
    def __init__(self, http: httpx.AsyncClient, directory_url: str, key: AccountKey, poll_interval: float = 1.0) -> None:
        self.http = http
        self.directory_url = directory_url
        self.key = key
        self.poll_interval = poll_interval
        self.directory: dict[str, Any] = {}
        self.kid: str | None = None
        self._nonce: str | None = None

    async def start(self) -> None:
        resp = await self.http.get(self.directory_url)
        if resp.status_code != 200:
            raise _problem(resp)
        self.directory = resp.json()
        for name in ("newNonce", "newAccount", "newOrder"):
            if not isinstance(self.directory.get(name), str):
                raise AcmeError(f"directory {self.directory_url} has no {name}")

    async def _new_nonce(self) -> str:
        resp = await self.http.head(self.directory["newNonce"])
        nonce = resp.headers.get("Replay-Nonce")
        if not nonce:
            raise AcmeError("the CA gave no Replay-Nonce")
        return str(nonce)

    async def post(self, url: str, payload: Any, accept: str = "application/json") -> httpx.Response:
        """A signed POST (``payload`` None: POST-as-GET, RFC 8555 §6.3), retried on badNonce."""
        for _ in range(NONCE_RETRIES):
            nonce = self._nonce or await self._new_nonce()
            self._nonce = None
            body = self.key.sign(url, nonce, payload, self.kid)
            resp = await self.http.post(url, content=body,
                                        headers={"Content-Type": "application/jose+json", "Accept": accept})  # fmt: skip
            self._nonce = resp.headers.get("Replay-Nonce")
            if resp.status_code < 400:
                return resp
            error = _problem(resp)
            if error.kind != "urn:ietf:params:acme:error:badNonce":
                raise error
        raise AcmeError("the CA kept refusing our nonces", "urn:ietf:params:acme:error:badNonce")

    async def account(self, email: str = "") -> str:
        """Create the account or find the existing one (RFC 8555 §7.3); returns its URL."""
        payload: dict[str, Any] = {"termsOfServiceAgreed": True}
        if email:
            payload["contact"] = [f"mailto:{email}"]
        resp = await self.post(self.directory["newAccount"], payload)
        kid = resp.headers.get("Location")
        if not kid:
            raise AcmeError("newAccount answered without a Location")
        self.kid = str(kid)
        return self.kid

    async def new_order(self, names: list[str]) -> Order:
        payload = {"identifiers": [{"type": "dns", "value": n} for n in names]}
        resp = await self.post(self.directory["newOrder"], payload)
        url = resp.headers.get("Location")
        if not url:
            raise AcmeError("newOrder answered without a Location")
        return Order(url, resp.json())

    async def get(self, url: str) -> dict[str, Any]:
        resp = await self.post(url, None)
        doc: dict[str, Any] = resp.json()
        return doc

    async def authorize(
        self, authz_url: str, publish: Callable[[str, str], Awaitable[None]], withdraw: Callable[[str], Awaitable[None]]
    ) -> None:
        """Answer one authorization with HTTP-01 (RFC 8555 §7.5, §8.3) and wait for it."""
        authz = await self.get(authz_url)
        name = authz.get("identifier", {}).get("value", "?")
        if authz.get("status") == "valid":
            return
        challenge = next((c for c in authz.get("challenges", []) if c.get("type") == "http-01"), None)
        if challenge is None:
            raise AcmeError(f"{name}: the CA offers no http-01 challenge")
        token = str(challenge["token"])
        await publish(token, self.key.key_authorization(token))
        try:
            await self.post(str(challenge["url"]), {})
            for _ in range(MAX_POLLS):
                resp = await self.post(authz_url, None)
                authz = resp.json()
                status = authz.get("status")
                if status == "valid":
                    log.info("acme: %s validated", name)
                    return
                if status != "pending":
                    errors = [c.get("error", {}).get("detail", "") for c in authz.get("challenges", []) if c.get("error")]
                    raise AcmeError(f"{name}: authorization {status}: {'; '.join(errors) or 'no detail'}")
                await asyncio.sleep(_retry_after(resp, self.poll_interval))
            raise AcmeError(f"{name}: authorization still pending")
        finally:
            await withdraw(token)

    async def finalize(self, order: Order, csr_der: bytes) -> str:
        """Send the CSR and wait for the certificate (RFC 8555 §7.4); returns the PEM chain."""
        resp = await self.post(str(order.body["finalize"]), {"csr": b64url(csr_der)})
        body = resp.json()
        for _ in range(MAX_POLLS):
            status = body.get("status")
            if status == "valid" and body.get("certificate"):
                break
            if status not in ("processing", "ready", "pending", "valid"):
                error = body.get("error", {}).get("detail", "no detail")
                raise AcmeError(f"order {status}: {error}")
            await asyncio.sleep(_retry_after(resp, self.poll_interval))
            resp = await self.post(order.url, None)
            body = resp.json()
        else:
            raise AcmeError("the order never became valid")
        cert = await self.post(str(body["certificate"]), None, accept="application/pem-certificate-chain")
        if b"-----BEGIN CERTIFICATE-----" not in cert.content:
            raise AcmeError("the CA sent no PEM certificate chain")
        return cert.text
