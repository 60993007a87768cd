"""ACME pieces without a CA: JWS signing, renewal decisions, atomic install."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from courriel.acme.issue import install, make_csr, renewal_due, wanted_names
from courriel.acme.jws import AccountKey, b64url, load_or_create_key
from courriel.acme.responder import BadRequest, parse_head, respond
from courriel.config import build_config
from courriel.tls import generate_self_signed
from tests.acme.testca import TestCA


def unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def test_jws_signature_verifies(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "account.key")
    assert (tmp_path / "account.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "account.key").private_numbers() == key.private_numbers()
    acct = AccountKey(key)
    for kid, payload in ((None, {"termsOfServiceAgreed": True}), ("https://ca/acct/1", None)):
        jws = json.loads(acct.sign("https://ca/new", "nonce-1", payload, kid))
        protected = json.loads(unb64(jws["protected"]))
        assert protected["alg"] == "ES256" and protected["nonce"] == "nonce-1" and protected["url"] == "https://ca/new"
        assert ("jwk" in protected) is (kid is None) and protected.get("kid") == kid
        assert jws["payload"] == ("" if payload is None else b64url(json.dumps(payload).encode()))
        raw = unb64(jws["signature"])
        assert len(raw) == 64
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key.public_key().verify(der, f"{jws['protected']}.{jws['payload']}".encode(), ec.ECDSA(hashes.SHA256()))
    assert acct.key_authorization("tok") == f"tok.{acct.thumbprint()}"
    assert len(unb64(acct.thumbprint())) == 32


def test_renewal_decisions(tmp_path: Path) -> None:
    env = {"COURRIEL_SERVER_HOSTNAME": "mail.example.test", "COURRIEL_ACME_NAMES": "imap.example.test,MAIL.example.test."}
    cfg = build_config({}, env=env, data_dir=tmp_path)
    assert wanted_names(cfg) == ["mail.example.test", "imap.example.test"]
    assert renewal_due(cfg) == "no certificate installed"
    generate_self_signed(tmp_path / "tls/cert.pem", tmp_path / "tls/key.pem", "mail.example.test")
    assert "lacks imap.example.test" in (renewal_due(cfg) or "")
    ca = TestCA()
    ca.issue(["mail.example.test", "imap.example.test"], tmp_path / "tls/cert.pem", tmp_path / "tls/key.pem")
    # Valid for 10 days: due below the default 30, not below 5.
    assert "days left (renewing below 30)" in (renewal_due(cfg) or "")
    cfg.acme.renew_days = 5
    assert renewal_due(cfg) is None
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=6)
    assert "days left" in (renewal_due(cfg, now=soon) or "")


def test_install_is_atomic_and_private(tmp_path: Path) -> None:
    cfg = build_config({}, env={}, data_dir=tmp_path)
    key, csr = make_csr(["a.test", "b.test"])
    install(cfg, key, "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    assert (tmp_path / "tls/key.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls/cert.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert not list((tmp_path / "tls").glob(".*tmp"))
    assert csr[:1] == b"\x30"  # DER SEQUENCE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: mail.example.test", ("GET", "/.well-known/acme-challenge/abc", "mail.example.test")),
     (b"HEAD / HTTP/1.0", ("HEAD", "/", "")),
     (b"GET /x HTTP/1.1\r\nhost: [::1]:80\r\nAccept: */*", ("GET", "/x", "[::1]:80"))],
)  # fmt: skip
def test_responder_head(raw: bytes, expected: tuple[str, str, str]) -> None:
    assert parse_head(raw) == expected


@pytest.mark.parametrize("raw", [b"GET / HTTP/2", b"GET x HTTP/1.1", b"GET / HTTP/1.1\r\nHost: a b", "GET /é HTTP/1.1".encode(), b""])
def test_responder_head_invalid(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_head(raw)


def test_responder_answers(tmp_path: Path) -> None:
    from courriel.acme import challenges

    challenges.put(tmp_path, "tok", "tok.thumb")
    assert respond("GET", "/.well-known/acme-challenge/tok", "", tmp_path) == (200, {"Content-Type": "application/octet-stream"}, b"tok.thumb")
    assert respond("GET", "/.well-known/acme-challenge/x", "h", tmp_path)[0] == 404
    assert respond("POST", "/.well-known/acme-challenge/tok", "h", tmp_path)[0] == 405
    assert respond("GET", "/a?b", "mail.test:80", tmp_path) == (301, {"Location": "https://mail.test/a?b"}, b"")
    assert respond("GET", "/", "", tmp_path)[0] == 400
