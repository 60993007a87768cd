"""Client autoconfiguration and the MTA-STS policy on the http listener."""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import CourrielServer

OUTLOOK_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    srv = CourrielServer(tmp_path_factory.mktemp("autoconfig"), only=("http",), env={"COURRIEL_MTA_STS_MODE": "enforce"})
    srv.start()
    yield srv
    srv.stop()


def get(srv: CourrielServer, path: str, **kw: object) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{srv.port('http')}{path}", **kw)  # type: ignore[arg-type]


def ports(srv: CourrielServer) -> dict[str, int]:
    return {name: srv.port(name) for name in ("imaps", "imap", "pop3s", "pop3", "submissions", "submission")}


def test_thunderbird(server: CourrielServer) -> None:
    for path in ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"):
        r = get(server, path, params={"emailaddress": "alice@example.test"})
        assert r.status_code == 200
        root = ET.fromstring(r.text)
        provider = root.find("emailProvider")
        assert provider is not None and provider.findtext("domain") == "example.test"
        incoming = provider.findall("incomingServer")
        first = incoming[0]
        assert (first.get("type"), first.findtext("port"), first.findtext("socketType")) == (
            "imap", str(ports(server)["imaps"]), "SSL",
        )  # implicit TLS preferred (RFC 8314)
        assert {(s.get("type"), s.findtext("socketType")) for s in incoming} == {
            ("imap", "SSL"), ("imap", "STARTTLS"), ("pop3", "SSL"), ("pop3", "STARTTLS"),
        }  # fmt: skip
        out = provider.findall("outgoingServer")
        assert [s.findtext("port") for s in out] == [str(ports(server)["submissions"]), str(ports(server)["submission"])]
        assert all(s.findtext("username") == "%EMAILADDRESS%" for s in incoming + out)
        assert all(s.findtext("hostname") == "mail.example.test" for s in incoming + out)


def test_thunderbird_unknown_domain_404(server: CourrielServer) -> None:
    r = get(server, "/.well-known/autoconfig/mail/config-v1.1.xml", params={"emailaddress": "x@elsewhere.example"})
    assert r.status_code == 404


def test_outlook(server: CourrielServer) -> None:
    url = f"http://127.0.0.1:{server.port('http')}/autodiscover/autodiscover.xml"
    r = httpx.post(url, content=OUTLOOK_REQUEST.format(address="bob@example.test"), headers={"content-type": "text/xml"})
    assert r.status_code == 200
    ns = {"r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    protocols = ET.fromstring(r.text).findall(".//r:Protocol", ns)
    got = {p.findtext("r:Type", namespaces=ns): (p.findtext("r:Port", namespaces=ns), p.findtext("r:SSL", namespaces=ns)) for p in protocols}
    assert got["IMAP"] == (str(ports(server)["imaps"]), "on")
    assert got["SMTP"] == (str(ports(server)["submissions"]), "on")
    assert all(p.findtext("r:LoginName", namespaces=ns) == "bob@example.test" for p in protocols)
    # The same in another case of the path, as Outlook sends it
    r2 = httpx.post(url.replace("autodiscover/autodiscover", "Autodiscover/Autodiscover"),
                    content=OUTLOOK_REQUEST.format(address="bob@example.test"))  # fmt: skip
    assert r2.status_code == 200
    bad = httpx.post(url, content=OUTLOOK_REQUEST.format(address="bob@elsewhere.example"))
    assert bad.status_code == 404
    assert httpx.post(url, content=b"<x/>").status_code == 400
    assert httpx.post(url, content=b"<a>" * 10000).status_code == 413


def test_apple_profile(server: CourrielServer) -> None:
    r = get(server, "/apple/mail.mobileconfig", params={"email": "alice@example.test"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-apple-aspen-config"
    profile = plistlib.loads(r.content)
    assert profile["PayloadType"] == "Configuration"
    mail = profile["PayloadContent"][0]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAddress"] == mail["IncomingMailServerUsername"] == "alice@example.test"
    assert mail["IncomingMailServerPortNumber"] == ports(server)["imaps"] and mail["IncomingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerPortNumber"] == ports(server)["submissions"]
    again = plistlib.loads(get(server, "/apple/mail.mobileconfig", params={"email": "alice@example.test"}).content)
    assert again["PayloadUUID"] == profile["PayloadUUID"]  # installing twice updates, not duplicates
    assert get(server, "/apple/mail.mobileconfig", params={"email": "not an address"}).status_code == 400


def test_mta_sts_policy(server: CourrielServer) -> None:
    r = get(server, "/.well-known/mta-sts.txt")
    assert r.status_code == 200
    assert r.text == "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"
    r = get(server, "/.well-known/mta-sts.txt", headers={"host": "mta-sts.elsewhere.example"})
    assert r.status_code == 404
