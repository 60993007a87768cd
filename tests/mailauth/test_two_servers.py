"""Two courriel servers on loopback (a.test and b.test) exchanging mail through the test DNS:
DKIM signed by one verifies on the other, SPF pass and fail, DMARC reject and quarantine,
local-domain spoofing refused, alias forwarding with SRS and the bounce routed back."""

from __future__ import annotations

import re
import smtplib
import uuid
from collections.abc import Iterator

import pytest

from tests.harness import CourrielServer
from tests.outbound.conftest import inbox, outbound_env, parse, wait_for
from tests.outbound.dnsserver import DnsServer


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DnsServer, CourrielServer, CourrielServer]]:
    with DnsServer() as dns:
        for domain in ("a.test", "b.test", "d.test", "q.test", "c.test"):
            dns.add(domain, "MX", f"10 mx.{domain}.")
            dns.add(f"mx.{domain}", "A", "127.0.0.1")
        dns.txt("a.test", "v=spf1 ip4:127.0.0.1 -all")
        dns.txt("b.test", "v=spf1 ip4:127.0.0.1 -all")
        dns.txt("_dmarc.a.test", "v=DMARC1; p=reject")
        dns.txt("c.test", "v=spf1 ip4:192.0.2.1 -all")  # SPF fails from loopback, no DMARC
        dns.txt("d.test", "v=spf1 ip4:192.0.2.1 -all")
        dns.txt("_dmarc.d.test", "v=DMARC1; p=reject")
        dns.txt("q.test", "v=spf1 ip4:192.0.2.1 ~all")
        dns.txt("_dmarc.q.test", "v=DMARC1; p=quarantine")
        a = CourrielServer(tmp_path_factory.mktemp("a"), domain="a.test", plaintext_auth=True,
                           users={"alice@a.test": "alice-pw", "carol@a.test": "carol-pw"})  # fmt: skip
        b = CourrielServer(tmp_path_factory.mktemp("b"), domain="b.test", plaintext_auth=True,
                           users={"bob@b.test": "bob-pw"})  # fmt: skip
        mailauth = {"COURRIEL_MAILAUTH_ENABLED": "true"}
        a.env.update(outbound_env(dns, b.port("smtp"), **mailauth))
        b.env.update(outbound_env(dns, a.port("smtp"), **mailauth))
        with a, b:
            for line in a.cli("dkim", "keygen", "a.test", "--selector", "t").stdout.splitlines():
                m = re.fullmatch(r'(\S+)\. IN TXT "(.*)"', line)
                assert m is not None, line
                dns.txt(m.group(1), m.group(2))
            b.cli("alias", "add", "fwd@b.test", "carol@a.test")
            yield dns, a, b


def message(sender: str, to: str, subject: str) -> bytes:
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Sun, 29 Nov 2026 01:00:00 +0000\r\n"
        f"Message-ID: <{uuid.uuid4()}@test>\r\n\r\nbody of {subject}\r\n"
    ).encode()


def submit(srv: CourrielServer, user: str, password: str, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("submission")) as c:
        c.login(user, password)
        c.sendmail(user, [to], message(user, to, subject))


def find(srv: CourrielServer, address: str, subject: str, mailbox: str = "INBOX") -> bytes:
    def look() -> bytes | None:
        hits = [m for m in inbox(srv, address, mailbox) if f"Subject: {subject}\r\n".encode() in m]
        return hits[0] if hits else None

    found: bytes = wait_for(look, what=f"{subject} in {address}'s {mailbox}")
    return found


def results(data: bytes) -> str:
    ar = parse(data)["Authentication-Results"]
    assert ar is not None
    return " ".join(str(ar).split())


def test_dkim_signed_by_a_verifies_on_b(net: tuple[DnsServer, CourrielServer, CourrielServer]) -> None:
    _, a, b = net
    submit(a, "alice@a.test", "alice-pw", "bob@b.test", "signed")
    got = find(b, "bob@b.test", "signed")
    ar = results(got)
    assert ar.startswith("mail.b.test;")
    assert "spf=pass smtp.mailfrom=alice@a.test" in ar
    assert "dkim=pass header.d=a.test header.s=te header.a=ed25519-sha256" in ar
    assert "dkim=pass header.d=a.test header.s=tr header.a=rsa-sha256" in ar
    assert "dmarc=pass" in ar
    assert got.index(b"Authentication-Results:") < got.index(b"DKIM-Signature:")


def test_reply_from_b_without_dkim(net: tuple[DnsServer, CourrielServer, CourrielServer]) -> None:
    _, a, b = net
    submit(b, "bob@b.test", "bob-pw", "alice@a.test", "reply")
    ar = results(find(a, "alice@a.test", "reply"))
    assert "spf=pass" in ar and "dkim=none" in ar and "dmarc=none" in ar


def mx_send(srv: CourrielServer, sender: str, to: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp")) as c:
        c.ehlo("client.test")
        c.sendmail(sender, [to], data)


def test_spf_fail_is_recorded(net: tuple[DnsServer, CourrielServer, CourrielServer]) -> None:
    _, _, b = net
    mx_send(b, "x@c.test", "bob@b.test", message("x@c.test", "bob@b.test", "spf-fail"))
    ar = results(find(b, "bob@b.test", "spf-fail"))
    assert "spf=fail smtp.mailfrom=x@c.test" in ar and "dmarc=none" in ar


def test_dmarc_reject_gets_550(net: tuple[DnsServer, CourrielServer, CourrielServer]) -> None:
    _, _, b = net
    with pytest.raises(smtplib.SMTPDataError) as info:
        mx_send(b, "x@d.test", "bob@b.test", message("x@d.test", "bob@b.test", "dmarc-reject"))
    assert info.value.smtp_code == 550
    assert info.value.smtp_error.startswith(b"5.7.1 DMARC policy of d.test")


def test_dmarc_quarantine_goes_to_junk(net: tuple[DnsServer, CourrielServer, CourrielServer]) -> None:
    _, _, b = net
    mx_send(b, "x@q.test", "bob@b.test", message("x@q.test", "bob@b.test", "dmarc-quarantine"))
    ar = results(find(b, "bob@b.test", "dmarc-quarantine", mailbox="Junk"))
    assert "spf=softfail" in ar and "dmarc=fail (p=quarantine)" in ar
    assert not [m for m in inbox(b, "bob@b.test") if b"dmarc-quarantine" in m]


def test_forged_local_from_is_refused(net: tuple[DnsServer, CourrielServer, CourrielServer]) -> None:
    _, _, b = net
    with pytest.raises(smtplib.SMTPDataError) as info:
        mx_send(b, "x@c.test", "bob@b.test", message("bob@b.test", "bob@b.test", "spoof"))
    assert info.value.smtp_code == 550
    assert b"local domain b.test" in info.value.smtp_error


def test_forged_authentication_results_are_removed(net: tuple[DnsServer, CourrielServer, CourrielServer]) -> None:
    _, _, b = net
    forged = b"Authentication-Results: mail.b.test; dkim=pass header.d=c.test\r\n" + message(
        "x@c.test", "bob@b.test", "forged-ar"
    )
    mx_send(b, "x@c.test", "bob@b.test", forged)
    got = find(b, "bob@b.test", "forged-ar")
    assert got.count(b"Authentication-Results:") == 1
    assert "spf=fail" in results(got)


def test_alias_forwarding_uses_srs_and_bounces_come_back(net: tuple[DnsServer, CourrielServer, CourrielServer]) -> None:
    _, a, b = net
    # alice@a.test -> fwd@b.test (B) -> carol@a.test (back on A), the envelope rewritten by B.
    submit(a, "alice@a.test", "alice-pw", "fwd@b.test", "forwarded")
    got = find(a, "carol@a.test", "forwarded")
    m = re.match(rb"Return-Path: <(SRS0=[^>]+@b\.test)>\r\n", got)
    assert m is not None, got[:200]
    srs_address = m.group(1).decode()
    assert "=a.test=alice@b.test" in srs_address
    ar = results(got)
    assert f"spf=pass smtp.mailfrom={srs_address}" in ar  # b.test's SPF covers the forwarder
    assert "dkim=pass header.d=a.test" in ar  # the signature survived forwarding
    # A bounce to the SRS address reaches the original sender through B.
    bounce = message("MAILER-DAEMON@mx.c.test", srs_address, "srs-bounce")
    mx_send(b, "", srs_address, bounce)
    back = find(a, "alice@a.test", "srs-bounce")
    assert back.startswith(b"Return-Path: <>\r\n")
    # A forged SRS address is refused like any unknown user.
    forged = srs_address.replace("SRS0=", "SRS0=x", 1)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mx_send(b, "", forged, bounce)
