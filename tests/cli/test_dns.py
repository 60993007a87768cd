"""courriel dns / courriel check: the printed zone is valid and, served by a DNS server of the
tests, passes the check; what is removed or changed is reported with the record to add."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from tests.outbound.dnsserver import DnsServer


def courriel(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "courriel", "-d", str(data), *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dns") / "data"
    for args in (["init", str(d), "--domain", "example.org", "--hostname", "mail.example.org", "--production"],
                 ["dkim", "keygen", "example.org"]):  # fmt: skip
        r = subprocess.run([sys.executable, "-m", "courriel", "-d", str(d), *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return d


def zone_records(text: str) -> list[tuple[str, str, str]]:
    zone = dns.zone.from_text(text, origin="example.org.", relativize=False, check_origin=False)
    out = []
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            for rdata in rdataset:
                out.append((name.to_text(), dns.rdatatype.to_text(rdataset.rdtype), rdata.to_text()))
    return out


def serve(records: list[tuple[str, str, str]], skip: tuple[str, str] | None = None) -> DnsServer:
    server = DnsServer()
    for name, rtype, value in records:
        if (name, rtype) != skip:
            server.add(name, rtype, value)
    server.add("10.2.0.192.in-addr.arpa", "PTR", "mail.example.org.")
    return server


def test_zone_is_valid_and_complete(data: Path) -> None:
    r = courriel(data, "dns", "example.org", "--ipv4", "192.0.2.10", "--ipv6", "2001:db8::10")
    assert r.returncode == 0, r.stderr
    recs = zone_records(r.stdout)
    kinds = {(n, t) for n, t, _ in recs}
    for want in [
        ("example.org.", "MX"), ("example.org.", "TXT"), ("mail.example.org.", "A"), ("mail.example.org.", "AAAA"),
        ("_dmarc.example.org.", "TXT"), ("_mta-sts.example.org.", "TXT"), ("_smtp._tls.example.org.", "TXT"),
        ("_submissions._tcp.example.org.", "SRV"), ("_submission._tcp.example.org.", "SRV"),
        ("_imaps._tcp.example.org.", "SRV"), ("_imap._tcp.example.org.", "SRV"), ("_pop3s._tcp.example.org.", "SRV"),
        ("_jmap._tcp.example.org.", "SRV"), ("autoconfig.example.org.", "CNAME"), ("autodiscover.example.org.", "CNAME"),
    ]:  # fmt: skip
        assert want in kinds, want
    dkim = [v for n, t, v in recs if n.endswith("._domainkey.example.org.")]
    assert len(dkim) == 2 and any("k=rsa" in v for v in dkim)  # the long RSA key split in 255-octet strings
    srv = {n: v for n, t, v in recs if t == "SRV"}
    assert srv["_submissions._tcp.example.org."] == "0 1 465 mail.example.org."
    assert srv["_imap._tcp.example.org."] == "10 1 143 mail.example.org."


def test_check_passes_then_reports(data: Path) -> None:
    zone = courriel(data, "dns", "example.org", "--ipv4", "192.0.2.10").stdout
    recs = zone_records(zone)
    with serve(recs) as server:
        r = courriel(data, "check", "example.org", "--ipv4", "192.0.2.10", "--dns", server.address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MISSING" not in r.stdout and "WRONG" not in r.stdout
    assert "ok      PTR   192.0.2.10 -> mail.example.org." in r.stdout

    with serve(recs, skip=("_dmarc.example.org.", "TXT")) as server:
        r = courriel(data, "check", "example.org", "--dns", server.address)
    assert r.returncode == 1
    assert "MISSING TXT   _dmarc.example.org." in r.stdout
    assert 'add:    _dmarc.example.org. 3600 IN TXT "v=DMARC1; p=quarantine' in r.stdout

    changed = [(n, t, "0 1 1143 mail.example.org." if n == "_imap._tcp.example.org." else v) for n, t, v in recs]
    with serve(changed) as server:
        r = courriel(data, "check", "example.org", "--dns", server.address)
    assert r.returncode == 2  # only a recommended record is off
    assert "WRONG   SRV   _imap._tcp.example.org. (recommended)" in r.stdout
    assert "found:  0 1 1143 mail.example.org." in r.stdout


def test_foreign_dkim_key_is_wrong(data: Path) -> None:
    recs = zone_records(courriel(data, "dns", "example.org").stdout)
    forged = [(n, t, '"v=DKIM1; k=ed25519; p=AAAA"' if "._domainkey." in n and "ed25519" in v else v) for n, t, v in recs]
    with serve(forged) as server:
        r = courriel(data, "check", "example.org", "--dns", server.address)
    assert r.returncode == 1
    assert "WRONG   TXT   " in r.stdout and "_domainkey.example.org." in r.stdout


def test_bad_address_is_refused(data: Path) -> None:
    r = courriel(data, "dns", "example.org", "--ipv4", "2001:db8::1")
    assert r.returncode == 1
    assert "is not an IPv4 address" in r.stderr
