"""Mail authentication pieces on their own: SRS, DMARC records and alignment, DKIM signing
and verification (tampering, missing keys), SPF through the test DNS, the A-R field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from courriel.config import MailauthSection
from courriel.mailauth import dkim, dmarc, spf
from courriel.mailauth.dkim import DkimResult
from courriel.mailauth.inbound import InboundChecker, from_domain
from courriel.mailauth.spf import SpfResult
from courriel.mailauth.srs import Srs
from courriel.queue.dns import Dns
from tests.outbound.dnsserver import DnsServer

DAY = 86400.0


def test_srs_round_trip_forgery_and_expiry() -> None:
    srs = Srs(b"secret", "fwd.test")
    now = 1_800_000_000.0
    out = srs.forward("alice@a.test", now)
    assert out.startswith("SRS0=") and out.endswith("=a.test=alice@fwd.test")
    assert srs.reverse(out, now) == "alice@a.test"
    assert srs.reverse(out, now + 20 * DAY) == "alice@a.test"
    assert srs.reverse(out, now + 30 * DAY) is None  # expired
    assert srs.reverse(out.replace("=alice@", "=mallory@"), now) is None  # hash no longer matches
    assert Srs(b"other", "fwd.test").reverse(out, now) is None
    assert srs.reverse("SRS0=abcd=AA=x.test=y@elsewhere.test", now) is None  # not our domain
    assert srs.reverse("bob@fwd.test", now) is None
    assert srs.forward("", now) == ""  # the null sender stays null
    assert srs.forward("local@fwd.test", now) == "local@fwd.test"


@pytest.mark.parametrize(
    ("text", "record"),
    [
        ("v=DMARC1; p=reject", dmarc.Record("reject", None, "r", "r", 100)),
        ("v=DMARC1;p=quarantine;sp=none;adkim=s;aspf=s;pct=50", dmarc.Record("quarantine", "none", "s", "s", 50)),
        ("v=DMARC1; p=bogus", None),
        ("v=DMARC1", None),
        ("v=spf1 -all", None),
        ("p=reject; v=DMARC1", None),  # v must come first (RFC 7489 §6.4)
        ("v=DMARC1; p=none; pct=x", dmarc.Record("none", None, "r", "r", 100)),
    ],
)
def test_dmarc_record(text: str, record: dmarc.Record | None) -> None:
    assert dmarc.parse_record(text) == record


@pytest.mark.parametrize(
    ("domain", "org"),
    [("a.example.com", "example.com"), ("example.com", "example.com"), ("x.y.example.co.uk", "example.co.uk")],
)
def test_organizational_domain(domain: str, org: str) -> None:
    assert dmarc.organizational_domain(domain) == org


def evaluate(record: str, spf_result: SpfResult, dkim_results: list[DkimResult], from_dom: str = "mail.a.test") -> dmarc.DmarcResult:
    async def txt(name: str) -> list[bytes]:
        return [record.encode()] if name == "_dmarc.a.test" else []

    return asyncio.run(dmarc.evaluate(from_dom, spf_result, dkim_results, txt, sample=lambda: 0.99))


def test_dmarc_alignment() -> None:
    spf_pass = SpfResult("pass", "bounce.a.test", "mailfrom", "")
    spf_other = SpfResult("pass", "b.test", "mailfrom", "")
    no_dkim = [DkimResult("none", None)]
    assert evaluate("v=DMARC1; p=reject", spf_pass, no_dkim).result == "pass"  # relaxed SPF alignment
    strict = evaluate("v=DMARC1; p=reject; aspf=s", spf_pass, no_dkim)
    assert (strict.result, strict.policy) == ("fail", "reject")
    assert evaluate("v=DMARC1; p=reject", spf_other, [DkimResult("pass", "a.test")]).result == "pass"
    assert evaluate("v=DMARC1; p=reject; adkim=s", spf_other, [DkimResult("pass", "a.test")]).result == "fail"
    assert evaluate("v=DMARC1; p=reject", spf_other, [DkimResult("fail", "a.test")]).policy == "reject"
    assert evaluate("v=DMARC1; p=reject; sp=quarantine", spf_other, no_dkim).policy == "quarantine"
    assert evaluate("v=DMARC1; p=reject; pct=50", spf_other, no_dkim).policy == "quarantine"  # not sampled
    assert evaluate("v=DMARC1; p=reject", spf_other, no_dkim, "c.test").result == "none"


def test_dkim_sign_and_verify(tmp_path: Path) -> None:
    keys = dkim.generate(tmp_path, "a.test", "s")
    records = {k.dns_name(): [r.encode()] for k, r in keys}
    assert [dkim.public_record(k) for k, _ in keys] == [r for _, r in keys]
    signer = dkim.DkimSigner(tmp_path)
    msg = b"From: x@a.test\r\nTo: y@b.test\r\nSubject: hi\r\n\r\nbody\r\n"
    assert signer.sign(msg, "other.test") is None
    signed = signer.sign(msg, "a.test")
    assert signed is not None and signed.endswith(msg)
    ok = dkim.verify(signed, lambda n: records.get(n, []))
    assert [(r.result, r.algorithm) for r in ok] == [("pass", "ed25519-sha256"), ("pass", "rsa-sha256")]
    tampered = dkim.verify(signed.replace(b"body", b"b0dy"), lambda n: records.get(n, []))
    assert [r.result for r in tampered] == ["fail", "fail"]
    header_changed = dkim.verify(signed.replace(b"Subject: hi", b"Subject: ho"), lambda n: records.get(n, []))
    assert [r.result for r in header_changed] == ["fail", "fail"]
    no_key = dkim.verify(signed, lambda n: [])
    assert all(r.result != "pass" for r in no_key)
    assert dkim.verify(msg, lambda n: []) == [DkimResult("none", None)]


@pytest.mark.parametrize(
    ("header", "domain"),
    [
        (b"From: a@x.test\r\n", "x.test"),
        (b"From: A <a@X.Test>, b@x.test\r\n", "x.test"),
        (b"From: a@x.test, b@y.test\r\n", None),  # RFC 7489 §6.6.1: no single domain
        (b"From: a@x.test\r\nFrom: b@x.test\r\n", None),
        (b"Subject: none\r\n", None),
    ],
)
def test_from_domain(header: bytes, domain: str | None) -> None:
    assert from_domain(header) == domain


def test_checker_strips_forged_results(dns: DnsServer) -> None:
    dns.txt("s.test", "v=spf1 ip4:127.0.0.1 -all")

    async def never_local(domain: str) -> bool:
        return False

    checker = InboundChecker(MailauthSection(), Dns(dns.address), "mx.here.test", never_local)
    msg = (
        b"Authentication-Results: mx.here.test; spf=pass\r\n\tsmtp.mailfrom=forged\r\n"
        b"Authentication-Results: other.test; spf=pass\r\nFrom: a@s.test\r\n\r\nx\r\n"
    )
    verdict = asyncio.run(checker.check(msg, "127.0.0.1", "helo.test", "a@s.test"))
    assert verdict.message == b"Authentication-Results: other.test; spf=pass\r\nFrom: a@s.test\r\n\r\nx\r\n"
    assert verdict.header.startswith(b"Authentication-Results: mx.here.test;\r\n\tspf=pass smtp.mailfrom=a@s.test")
    assert verdict.reject is None and not verdict.quarantine
    assert spf.check("192.0.2.9", "a@s.test", "h").result == "fail"
