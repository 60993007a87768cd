"""MTA-STS honoured by outbound delivery, and the TLS reports it produces, end to end: the
tests' DNS server, policies served over HTTPS on loopback, a remote MX (aiosmtpd) offering
STARTTLS with a certificate from a test CA, valid for mx.good.test only.

- enforce.test  (enforce, MX mx.good.test): delivered over verified TLS.
- mismatch.test (enforce, MX mx.good.test, policy names mx.other.test): deferred, never sent.
- badcert.test  (enforce, MX mx.bad.test, the certificate does not name it): deferred.
- testing.test  (testing, MX mx.bad.test): delivered anyway, the failure in the TLS report.
The reports (period shortened to 2 s) go to rua mailto:tls@reports.test, read back here.
"""

from __future__ import annotations

import gzip
import http.server
import json
import smtplib
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.acme.testca import TestCA
from tests.harness import CourrielServer, free_port
from tests.outbound.conftest import Sink, outbound_env, parse, queue_listing, wait_for
from tests.outbound.dnsserver import DnsServer

POLICIES = {
    "enforce.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.good.test\r\nmax_age: 86400\r\n",
    "mismatch.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.other.test\r\nmx: *.other.test\r\nmax_age: 86400\r\n",
    "badcert.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.bad.test\r\nmax_age: 86400\r\n",
    "testing.test": "version: STSv1\r\nmode: testing\r\nmx: mx.bad.test\r\nmax_age: 86400\r\n",
}
MX = {"enforce.test": "mx.good.test", "mismatch.test": "mx.good.test", "badcert.test": "mx.bad.test",
      "testing.test": "mx.bad.test", "reports.test": "mx.good.test"}  # fmt: skip


class PolicyServer:
    """HTTPS on loopback answering /.well-known/mta-sts.txt by Host (mta-sts.DOMAIN)."""

    def __init__(self, ca: TestCA, folder: Path) -> None:
        ca.issue([f"mta-sts.{d}" for d in POLICIES], folder / "web.pem", folder / "web.key")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(folder / "web.pem", folder / "web.key")
        self.fetches: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                domain = (self.headers.get("Host") or "").removeprefix("mta-sts.")
                owner.fetches.append(domain)
                body = POLICIES.get(domain, "").encode()
                if self.path != "/.well-known/mta-sts.txt" or not body:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[DnsServer, Sink, PolicyServer, Path]]:
    ca = TestCA()
    bundle = ca.write_root(tmp_path / "ca.pem")
    ca.issue(["mx.good.test"], tmp_path / "mx.pem", tmp_path / "mx.key")
    mx_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    mx_tls.load_cert_chain(tmp_path / "mx.pem", tmp_path / "mx.key")
    sink = Sink(free_port())
    ctl = Controller(sink, hostname="127.0.0.1", port=sink.port, decode_data=False, tls_context=mx_tls)
    ctl.start()
    web = PolicyServer(ca, tmp_path)
    with DnsServer() as dns:
        for domain, mx in MX.items():
            dns.add(domain, "MX", f"10 {mx}.")
        for host in ("mx.good.test", "mx.bad.test", *(f"mta-sts.{d}" for d in POLICIES)):
            dns.add(host, "A", "127.0.0.1")
        for domain in POLICIES:
            dns.txt(f"_mta-sts.{domain}", "v=STSv1; id=20261129T000000;")
            dns.txt(f"_smtp._tls.{domain}", "v=TLSRPTv1; rua=mailto:tls@reports.test")
        try:
            yield dns, sink, web, bundle
        finally:
            web.close()
            ctl.stop()


def test_policies_enforced_and_reported(tmp_path: Path, world: tuple[DnsServer, Sink, PolicyServer, Path]) -> None:
    dns, sink, web, bundle = world
    env = outbound_env(dns, sink.port, COURRIEL_OUTBOUND_MTA_STS_CA_BUNDLE=str(bundle),
                       COURRIEL_OUTBOUND_MTA_STS_PORT=str(web.port), COURRIEL_OUTBOUND_TLSRPT_PERIOD="2",
                       COURRIEL_OUTBOUND_RETRY_BASE="3600", COURRIEL_OUTBOUND_RETRY_MAX="3600")  # fmt: skip
    with CourrielServer(tmp_path / "srv", plaintext_auth=True, env=env) as srv:
        with smtplib.SMTP("127.0.0.1", srv.port("submission")) as c:
            c.login("alice@example.test", "alice-pw")
            for domain in ("enforce.test", "mismatch.test", "badcert.test", "testing.test"):
                c.sendmail("alice@example.test", [f"bob@{domain}"],
                           f"From: alice@example.test\r\nSubject: to {domain}\r\n\r\nhello\r\n".encode())  # fmt: skip

        def delivered_to() -> set[str]:
            return {r for m in sink.messages for r in m.rcpts}

        wait_for(lambda: {"bob@enforce.test", "bob@testing.test"} <= delivered_to(), what="deliveries")
        listing = wait_for(lambda: (q := queue_listing(srv)).count("4.7.5") >= 2 and q, what="two deferrals")
        assert "bob@mismatch.test" not in delivered_to() and "bob@badcert.test" not in delivered_to()
        assert "MTA-STS policy of mismatch.test (enforce) allows none of its MX hosts (mx.good.test)" in listing
        assert "MTA-STS policy of badcert.test" in listing and "mx.bad.test" in listing
        assert "Hostname mismatch" in listing or "not valid for" in listing
        # Cached by id: one fetch per domain, and the cache is on disk.
        assert sorted(set(web.fetches)) == sorted(POLICIES)
        assert (srv.data / "mta-sts" / "enforce.test.json").exists()

        # The reports of the finished periods reach tls@reports.test (through the same MX).
        def reports() -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {}
            for m in sink.messages:
                if m.rcpts != ["tls@reports.test"]:
                    continue
                msg = parse(m.data)
                assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "tlsrpt"
                part = msg.get_payload()[1]  # type: ignore[index]
                assert part.get_content_type() == "application/tlsrpt+gzip"
                doc = json.loads(gzip.decompress(part.get_payload(decode=True)))
                assert msg["TLS-Report-Domain"] == doc["policies"][0]["policy"]["policy-domain"]
                assert msg["TLS-Report-Submitter"] == "mail.example.test"
                out.setdefault(msg["TLS-Report-Domain"], []).append(doc)
            return out

        got = wait_for(lambda: (r := reports()) and {"testing.test", "enforce.test", "mismatch.test"} <= set(r) and r,
                       what="TLS reports", timeout=60)  # fmt: skip

        def totals(domain: str) -> tuple[int, int, set[tuple[str, str]]]:
            ok = bad = 0
            kinds: set[tuple[str, str]] = set()
            for doc in got[domain]:
                assert set(doc) >= {"organization-name", "date-range", "contact-info", "report-id", "policies"}
                pol = doc["policies"][0]
                assert pol["policy"]["policy-type"] == "sts"
                assert pol["policy"]["policy-string"] == POLICIES[domain].strip().split("\r\n")
                ok += pol["summary"]["total-successful-session-count"]
                bad += pol["summary"]["total-failure-session-count"]
                kinds |= {(d["result-type"], d.get("receiving-mx-hostname", "")) for d in pol["failure-details"]}
            return ok, bad, kinds

        ok, bad, _ = totals("enforce.test")
        assert ok >= 1 and bad == 0
        ok, bad, kinds = totals("testing.test")
        assert bad >= 1 and ("certificate-host-mismatch", "mx.bad.test") in kinds
        ok, bad, kinds = totals("mismatch.test")
        assert bad >= 1 and ("validation-failure", "mx.good.test") in kinds
