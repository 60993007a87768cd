"""Obtain or renew the certificate and install it where ``[tls] cert``/``key`` point.

The new key and chain are written next to the live files and renamed over them (key first),
keeping the owner of the files they replace (the server may run as ``[server] user`` while
``courriel cert renew`` runs as root). The running server then reloads them (its file
watch, SIGHUP, or directly when the renewal runs inside it).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from courriel.acme import challenges
from courriel.acme.client import AcmeClient
from courriel.acme.jws import AccountKey, load_or_create_key
from courriel.config import Config

log = logging.getLogger("courriel.acme")


@dataclass
class CertInfo:
    names: list[str]
    issuer: str
    subject: str
    not_after: dt.datetime

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.UTC)
        return (self.not_after - now).total_seconds() / 86400


def wanted_names(cfg: Config) -> list[str]:
    """server.hostname, then ``[acme] names``, without duplicates."""
    out: list[str] = []
    for name in [cfg.server.hostname, *cfg.acme.names]:
        name = name.strip().lower().rstrip(".")
        if name and name not in out:
            out.append(name)
    return out


def current(cfg: Config) -> CertInfo | None:
    """What the installed certificate is, or None when there is none (or it is unreadable)."""
    try:
        cert = x509.load_pem_x509_certificate(cfg.path(cfg.tls.cert).read_bytes())
    except (OSError, ValueError):
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    return CertInfo(names, cert.issuer.rfc4514_string(), cert.subject.rfc4514_string(), cert.not_valid_after_utc)


def renewal_due(cfg: Config, now: dt.datetime | None = None) -> str | None:
    """Why the certificate must be (re)issued, or None while it is fine."""
    info = current(cfg)
    if info is None:
        return "no certificate installed"
    missing = [n for n in wanted_names(cfg) if n not in info.names]
    if missing:
        return f"the certificate lacks {', '.join(missing)}"
    if info.days_left(now) < cfg.acme.renew_days:
        return f"{info.days_left(now):.1f} days left (renewing below {cfg.acme.renew_days})"
    if info.issuer == info.subject:
        return "the certificate is self-signed"
    return None


def make_csr(names: list[str]) -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.DER)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    owner: tuple[int, int] | None = None
    try:
        st = path.stat()
        owner = (st.st_uid, st.st_gid)
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.acme-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if owner is not None and os.geteuid() == 0:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def install(cfg: Config, key: rsa.RSAPrivateKey, chain_pem: str) -> None:
    cert_path, key_path = cfg.path(cfg.tls.cert), cfg.path(cfg.tls.key)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_atomic(key_path, key_pem, 0o600)
    _write_atomic(cert_path, chain_pem.encode(), 0o644)


def _verify(cfg: Config) -> ssl.SSLContext | bool:
    if cfg.acme.ca_bundle:
        return ssl.create_default_context(cafile=str(cfg.path(cfg.acme.ca_bundle)))
    return True


async def obtain(cfg: Config, poll_interval: float = 1.0) -> CertInfo:
    """Run one ACME order for :func:`wanted_names` and install the certificate."""
    names = wanted_names(cfg)
    account = AccountKey(load_or_create_key(cfg.data_dir / "acme" / "account.key"))
    data_dir = cfg.data_dir

    async def publish(token: str, answer: str) -> None:
        challenges.put(data_dir, token, answer)

    async def withdraw(token: str) -> None:
        challenges.remove(data_dir, token)

    async with httpx.AsyncClient(verify=_verify(cfg), timeout=30.0) as http:
        client = AcmeClient(http, cfg.acme.directory, account, poll_interval)
        await client.start()
        await client.account(cfg.acme.email)
        order = await client.new_order(names)
        for authz_url in order.body.get("authorizations", []):
            await client.authorize(str(authz_url), publish, withdraw)
        key, csr = make_csr(names)
        chain = await client.finalize(order, csr)
    install(cfg, key, chain)
    info = current(cfg)
    assert info is not None
    log.info("acme: certificate for %s installed, valid until %s", ", ".join(names), info.not_after.isoformat())
    return info
