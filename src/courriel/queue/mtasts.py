"""MTA-STS (RFC 8461) for outbound delivery: discover, fetch, cache and apply a domain's policy.

- ``_mta-sts.DOMAIN`` TXT (§3.1) names the policy id; the policy is fetched from
  ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` (§3.3: HTTPS with a valid certificate for
  that name, no redirects, text/plain) and cached by id for its ``max_age`` (§5).
- A fresh TXT id equal to the cached one keeps the cache; a missing TXT record or a failed
  fetch falls back to a cached, unexpired policy (§5.1), so an attacker who strips DNS or
  HTTPS does not turn enforcement off.
- Enforce mode (§5): only MX hosts matching the policy's ``mx`` patterns (§4.1), each reached
  with STARTTLS and a certificate valid for the MX name; failures defer, never downgrade.
  Testing mode: the same checks, reported through TLS-RPT, but delivery goes on anyway.

The fetch resolves ``mta-sts.DOMAIN`` through ``[outbound] dns`` like the rest of delivery.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import ssl
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from courriel.queue.dns import Dns, DnsTempError, NoSuchDomain

log = logging.getLogger("courriel.outbound")

#: §3.3: senders may refuse bigger policies; 64 KiB is what the RFC suggests.
MAX_POLICY = 64 * 1024
#: §3.2: max_age is at most 31557600 seconds.
MAX_AGE = 31557600
#: §3.1: id is 1-32 alphanumerics.
_ID = re.compile(r"[A-Za-z0-9]{1,32}")


class PolicyError(ValueError):
    """A TXT record or policy file that does not follow RFC 8461 §3."""


@dataclass(frozen=True, slots=True)
class Policy:
    domain: str
    id: str
    mode: str  # enforce | testing | none
    mx: tuple[str, ...]
    max_age: int
    text: str  # the policy file as fetched (TLS-RPT reports it line by line)
    fetched: float = 0.0

    @property
    def expires(self) -> float:
        return self.fetched + self.max_age

    def matches(self, host: str) -> bool:
        return any(mx_matches(p, host) for p in self.mx)


def parse_txt(records: list[bytes]) -> str | None:
    """The policy id of the ``_mta-sts`` TXT records (§3.1), None when there is no STSv1 record.

    Records not starting with ``v=STSv1`` are ignored; more than one STSv1 record, or one
    without a valid id, is an error (treated as no record, §3.1)."""
    found: list[str] = []
    for raw in records:
        text = raw.decode("ascii", "replace").strip()
        if not re.match(r"v=STSv1\s*(;|$)", text):
            continue
        fields: dict[str, str] = {}
        for item in text.split(";"):
            key, eq, value = item.strip().partition("=")
            if eq:
                fields.setdefault(key.strip(), value.strip())
        ident = fields.get("id", "")
        if not _ID.fullmatch(ident):
            raise PolicyError(f"_mta-sts TXT record without a valid id: {text!r}")
        found.append(ident)
    if len(found) > 1:
        raise PolicyError("more than one STSv1 TXT record")
    return found[0] if found else None


def parse_policy(text: str, domain: str, ident: str, fetched: float = 0.0) -> Policy:
    """Parse a policy file (§3.2): ``key: value`` lines, CRLF or LF."""
    fields: dict[str, str] = {}
    mx: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise PolicyError(f"policy line without ':': {line!r}")
        key, value = key.strip(), value.strip()
        if key == "mx":
            mx.append(value.lower().rstrip("."))
        else:
            fields.setdefault(key, value)
    if fields.get("version") != "STSv1":
        raise PolicyError("policy version is not STSv1")
    mode = fields.get("mode", "")
    if mode not in ("enforce", "testing", "none"):
        raise PolicyError(f"policy mode {mode!r} is not enforce/testing/none")
    age = fields.get("max_age", "")
    if not age.isdigit() or len(age) > 10:
        raise PolicyError(f"policy max_age {age!r} is not a number")
    if mode != "none" and not mx:
        raise PolicyError("policy without mx")
    return Policy(domain, ident, mode, tuple(mx), min(int(age), MAX_AGE), text, fetched)


def mx_matches(pattern: str, host: str) -> bool:
    """§4.1: an exact name, or ``*.example.com`` matching exactly one more label on the left."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(dot) and bool(label) and rest == pattern[2:]
    return pattern == host


def parse_http_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of an HTTP/1.x response without chunking."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise PolicyError("truncated HTTP response")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise PolicyError(f"bad HTTP status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise PolicyError("chunked HTTP response to an HTTP/1.0 request")
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        body = body[: int(length)]
    return int(parts[1]), headers, body


class MtaSts:
    """Policy lookups with a file cache in ``DATA/mta-sts/DOMAIN.json``."""

    def __init__(self, dns: Dns, cache_dir: Path, ca_bundle: str = "", port: int = 443, timeout: float = 30.0) -> None:
        self.dns = dns
        self.cache_dir = cache_dir
        self.port = port
        self.timeout = timeout
        self.ssl = ssl.create_default_context(cafile=ca_bundle or None)
        self._memory: dict[str, Policy] = {}

    # --- cache ---------------------------------------------------------------------------
    def _cache_file(self, domain: str) -> Path:
        return self.cache_dir / f"{domain}.json"

    def cached(self, domain: str, now: float | None = None) -> Policy | None:
        now = time.time() if now is None else now
        policy = self._memory.get(domain)
        if policy is None:
            try:
                raw = json.loads(self._cache_file(domain).read_text())
                policy = Policy(raw["domain"], raw["id"], raw["mode"], tuple(raw["mx"]), int(raw["max_age"]),
                                raw["text"], float(raw["fetched"]))  # fmt: skip
            except (OSError, ValueError, KeyError, TypeError):
                return None
            self._memory[domain] = policy
        return policy if policy.expires > now else None

    def _store(self, policy: Policy) -> None:
        self._memory[policy.domain] = policy
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._cache_file(policy.domain).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(policy)))
        os.replace(tmp, self._cache_file(policy.domain))

    # --- lookups -------------------------------------------------------------------------
    async def policy(self, domain: str) -> Policy | None:
        """The policy to apply to ``domain`` now, or None (no MTA-STS)."""
        domain = domain.lower().rstrip(".")
        cached = self.cached(domain)
        try:
            ident = parse_txt(await self.dns.txt(f"_mta-sts.{domain}"))
        except (DnsTempError, NoSuchDomain, PolicyError) as exc:
            log.info("outbound: MTA-STS TXT of %s: %s", domain, exc)
            return cached
        if ident is None:
            return cached  # §5.1: a cached policy outlives its TXT record
        if cached is not None and cached.id == ident:
            return cached
        try:
            policy = await self.fetch(domain, ident)
        except (PolicyError, OSError, ssl.SSLError, TimeoutError, DnsTempError, NoSuchDomain) as exc:
            log.warning("outbound: MTA-STS policy of %s not fetched: %s", domain, exc)
            return cached
        self._store(policy)
        log.info("outbound: MTA-STS policy of %s (id %s): mode %s, mx %s", domain, ident, policy.mode, ", ".join(policy.mx))
        return policy

    async def fetch(self, domain: str, ident: str) -> Policy:
        host = f"mta-sts.{domain}"
        addresses = await self.dns.addresses(host)
        if not addresses:
            raise PolicyError(f"{host} has no address")
        errors: list[str] = []
        for ip in addresses:
            try:
                raw = await asyncio.wait_for(self._get(ip, host), self.timeout)
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                errors.append(f"{ip}: {exc}")
                continue
            status, headers, body = parse_http_response(raw)
            if status != 200:  # §3.3: redirects are not followed
                raise PolicyError(f"https://{host}/.well-known/mta-sts.txt answered {status}")
            if not headers.get("content-type", "").lower().startswith("text/plain"):
                raise PolicyError(f"policy of {domain} is not text/plain")
            if len(body) > MAX_POLICY:
                raise PolicyError(f"policy of {domain} is larger than {MAX_POLICY} bytes")
            return parse_policy(body.decode("utf-8", "replace"), domain, ident, time.time())
        raise OSError(f"cannot fetch the policy of {domain}: {'; '.join(errors)}")

    async def _get(self, ip: str, host: str) -> bytes:
        """GET the policy over HTTPS, the certificate checked against ``host`` (§3.3)."""
        reader, writer = await asyncio.open_connection(ip, self.port, ssl=self.ssl, server_hostname=host,
                                                       limit=MAX_POLICY)  # fmt: skip
        try:
            request = f"GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: {host}\r\nUser-Agent: courriel\r\n\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            data = b""
            while len(data) <= MAX_POLICY + 8192:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
            return data
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass
