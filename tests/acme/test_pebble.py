"""ACME against pebble (Let's Encrypt's test CA) on loopback: HTTP-01 answered by courriel's
http listener, the certificate installed and served by the running IMAPS/SMTPS listeners
without a restart, then a forced renewal from the command line picked up the same way."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.acme.test_reload import served_cert, wait_for
from tests.acme.testca import TestCA
from tests.harness import CourrielServer, free_port
from tests.outbound.dnsserver import DnsServer
from tests.tools import need

NAMES = ["mail.example.test", "imap.example.test"]


class Pebble:
    def __init__(self, root: Path, http_port: int, dns: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        ca = TestCA("pebble front CA")
        self.ca_bundle = ca.write_root(root / "front-ca.pem")
        ca.issue(["127.0.0.1", "localhost"], root / "cert.pem", root / "key.pem")
        self.port, self.mgmt = free_port(), free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.mgmt}",
                "certificate": str(root / "cert.pem"),
                "privateKey": str(root / "key.pem"),
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (root / "pebble.json").write_text(json.dumps(config))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_VA_ALWAYS_VALID": "0",
               "PEBBLE_AUTHZREUSE": "0"}  # fmt: skip
        self.log = (root / "pebble.log").open("w")
        self.proc = subprocess.Popen([need("pebble"), "-config", str(root / "pebble.json"), "-dnsserver", dns],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        wait_for(self._up, "pebble listens")

    def _up(self) -> bool:
        assert self.proc.poll() is None, (self.root / "pebble.log").read_text()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def root_ca(self) -> str:
        """The root pebble signs with (made up at its start)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_bundle))
        return httpx.get(f"https://127.0.0.1:{self.mgmt}/roots/0", verify=ctx).text

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        for name in NAMES:
            server.add(name, "A", "127.0.0.1")
        yield server


def verified_names(port: int, root_pem: str, hostname: str) -> list[str]:
    """Handshake trusting only pebble's root, checking the host name; the SANs served."""
    ctx = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=hostname) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return sorted(str(n) for n in san.value.get_values_for_type(x509.DNSName))


def test_issue_install_reload_and_forced_renewal(tmp_path: Path, dns: DnsServer) -> None:
    srv = CourrielServer(tmp_path / "courriel", users={}, only=("imaps", "submissions", "http", "acme"))
    pebble = Pebble(tmp_path / "pebble", srv.port("http"), dns.address)
    port80 = free_port()  # [acme] http_listen: the plain-HTTP responder (port 80 in production)
    try:
        srv.env.update({
            "COURRIEL_ACME_ENABLED": "true",
            "COURRIEL_ACME_DIRECTORY": pebble.directory,
            "COURRIEL_ACME_CA_BUNDLE": str(pebble.ca_bundle),
            "COURRIEL_ACME_NAMES": "imap.example.test",
            "COURRIEL_ACME_EMAIL": "postmaster@example.test",
            "COURRIEL_TLS_RELOAD_INTERVAL": "1",
            "COURRIEL_ACME_HTTP_LISTEN": f"127.0.0.1:{port80}",
        })  # fmt: skip
        with srv:
            self_signed = served_cert(srv.port("imaps"))
            # The background service orders at start (the init certificate is self-signed).
            wait_for(lambda: served_cert(srv.port("imaps")) != self_signed, "the ACME certificate is served", 90)
            root = pebble.root_ca()
            for name in NAMES:
                assert verified_names(srv.port("imaps"), root, name) == sorted(NAMES)
            assert verified_names(srv.port("submissions"), root, "mail.example.test") == sorted(NAMES)
            issued = served_cert(srv.port("imaps"))
            assert issued == x509.load_pem_x509_certificate(srv.cert.read_bytes())
            assert (srv.data / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600
            status = srv.cli("cert", "status").stdout
            assert "renewal: not due" in status and "imap.example.test" in status
            assert "not due" in srv.cli("cert", "renew").stdout
            # Forced renewal from the command line (another process): its token is answered
            # by the running server from disk; the file watch installs the new certificate.
            out = srv.cli("cert", "renew", "--force").stdout
            assert "installed" in out
            renewed = x509.load_pem_x509_certificate(srv.cert.read_bytes())
            assert renewed.serial_number != issued.serial_number
            wait_for(lambda: served_cert(srv.port("imaps")) == renewed, "the renewed certificate is served")
            assert served_cert(srv.port("submissions")) == renewed
            assert not list((srv.data / "acme" / "challenges").iterdir())  # tokens withdrawn
            assert srv.proc is not None and srv.proc.poll() is None
            # The port-80 responder: same tokens, everything else redirected to https://.
            from courriel.acme import challenges

            challenges.put(srv.data, "t0k", "t0k.print")
            base = f"http://127.0.0.1:{port80}"
            r = httpx.get(f"{base}/.well-known/acme-challenge/t0k")
            assert (r.status_code, r.text) == (200, "t0k.print")
            assert httpx.get(f"{base}/.well-known/acme-challenge/nope").status_code == 404
            r = httpx.get(f"{base}/mail/?x=1", headers={"Host": "mail.example.test"})
            assert (r.status_code, r.headers["location"]) == (301, "https://mail.example.test/mail/?x=1")
            with socket.create_connection(("127.0.0.1", port80)) as raw:
                raw.sendall(b"NONSENSE\r\n\r\n")
                assert raw.recv(100).startswith(b"HTTP/1.1 400 ")
    finally:
        pebble.stop()


def test_challenge_part_serves_only_known_tokens(tmp_path: Path) -> None:
    from courriel.acme import challenges

    with CourrielServer(tmp_path, users={}, only=("http",)) as srv:
        challenges.put(srv.data, "tok_en-1", "tok_en-1.thumb")  # as `cert renew` does, on disk
        base = f"http://127.0.0.1:{srv.port('http')}/.well-known/acme-challenge/"
        r = httpx.get(base + "tok_en-1")
        assert (r.status_code, r.text) == (200, "tok_en-1.thumb")
        assert httpx.get(base + "unknown").status_code == 404
        assert httpx.get(base + "..%2Fcourriel.toml").status_code == 404
        challenges.remove(srv.data, "tok_en-1")
        assert httpx.get(base + "tok_en-1").status_code == 404
    with pytest.raises(ValueError):
        challenges.put(tmp_path, "../x", "y")
