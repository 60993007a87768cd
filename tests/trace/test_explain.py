"""`courriel explain`: MIME trees and authentication results of a table of raw messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from courriel.trace.explain import explain, parse_authentication_results

MIXED = (
    b"From: =?ISO-8859-15?Q?Ren=E9_=A4uro?= <rene@example.test>\r\n"
    b"To: =?UTF-8?B?0JjQstCw0L0=?= <ivan@example.test>\r\n"
    b"Subject: =?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=\r\n"
    b"Message-ID: <m1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=ISO-8859-15\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Co=FBt: 5 =A4\r\n"
    b"--b1\r\n"
    b"Content-Type: application/pdf; name=\"r.pdf\"\r\n"
    b"Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: inner@example.test\r\n"
    b"Subject: inner one\r\n"
    b"Content-Type: multipart/alternative; boundary=b2\r\n"
    b"\r\n"
    b"--b2\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"hi\r\n"
    b"--b2\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>hi</p>\r\n"
    b"--b2--\r\n"
    b"--b1--\r\n"
)

SIMPLE = b"From: a@example.test\r\nSubject: plain\r\nAuthentication-Results: mx.example.test;\r\n" \
         b"\tspf=pass smtp.mailfrom=a@example.test;\r\n\tdkim=fail reason=\"bad sig\" header.d=example.test;\r\n" \
         b"\tdmarc=none (p=none) header.from=example.test\r\n\r\nbody\r\n"

BROKEN = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nno end\r\n"


def shape(node: dict[str, Any]) -> Any:
    keys = ("part", "type", "charset", "encoding", "filename", "subject")
    own = tuple(node.get(k) for k in keys)
    return (own, [shape(c) for c in node.get("children", [])]) if "children" in node else own


CASES: list[tuple[str, bytes, Any]] = [
    ("mixed with attachment and nested message", MIXED,
     (("TEXT", "multipart/mixed", None, None, None, None), [
         ("1", "text/plain", "iso-8859-15", "quoted-printable", None, None),
         ("2", "application/pdf", None, "base64", "résumé.pdf", None),
         (("3", "message/rfc822", None, "7bit", None, "inner one"), [
             ("3.1", "text/plain", "utf-8", "7bit", None, None),
             ("3.2", "text/html", "utf-8", "7bit", None, None)]),
     ])),
    ("single part", SIMPLE, ("TEXT", "text/plain", "us-ascii", "7bit", None, None)),
    ("unterminated multipart", BROKEN,
     (("TEXT", "multipart/mixed", None, None, None, None), [("1", "text/plain", None, "7bit", None, None)])),
]


@pytest.mark.parametrize(("name", "data", "expected"), CASES, ids=[c[0] for c in CASES])
def test_trees(name: str, data: bytes, expected: Any) -> None:
    assert shape(explain(data)["tree"]) == expected


def test_decoded_headers_and_sizes() -> None:
    info = explain(MIXED)
    assert info["headers"]["From"] == "René €uro <rene@example.test>"
    assert info["headers"]["To"] == "Иван <ivan@example.test>"
    assert info["headers"]["Subject"] == "日本語の件名"
    assert info["size"] == len(MIXED)
    assert info["tree"]["children"][0]["size"] == len(b"Co=FBt: 5 =A4")
    assert info["tree"]["children"][1]["disposition"] == "attachment"


def test_defects_reported() -> None:
    assert explain(BROKEN)["defects"]


def test_authentication_results() -> None:
    info = explain(SIMPLE)
    assert info["authentication_results"] == [{
        "authserv_id": "mx.example.test",
        "results": [
            {"method": "spf", "result": "pass", "properties": {"smtp.mailfrom": "a@example.test"}},
            {"method": "dkim", "result": "fail", "properties": {"header.d": "example.test"}, "reason": "bad sig"},
            {"method": "dmarc", "result": "none", "properties": {"header.from": "example.test"}},
        ],
    }]


@pytest.mark.parametrize(("value", "expected"), [
    ("mx.test; none", {"authserv_id": "mx.test", "results": []}),
    ("mx.test 1; dkim=pass (good) header.d=a.test header.s=s1",
     {"authserv_id": "mx.test", "results": [
         {"method": "dkim", "result": "pass", "properties": {"header.d": "a.test", "header.s": "s1"}}]}),
])
def test_parse_authentication_results(value: str, expected: dict[str, Any]) -> None:
    assert parse_authentication_results(value) == expected


def test_cli(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(MIXED)
    run = subprocess.run([sys.executable, "-m", "courriel", "explain", str(path)], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert "multipart/mixed" in run.stdout and "résumé.pdf" in run.stdout and "charset=iso-8859-15" in run.stdout
    assert "inner one" in run.stdout and "Authentication-Results: none" in run.stdout
    raw = subprocess.run([sys.executable, "-m", "courriel", "explain", "--json", "-"], input=SIMPLE,
                         capture_output=True, check=True)  # fmt: skip
    assert json.loads(raw.stdout)["authentication_results"][0]["results"][0]["result"] == "pass"
    run = subprocess.run([sys.executable, "-m", "courriel", "explain", str(tmp_path / "missing")],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 1 and "missing" in run.stderr


def test_cli_verify(tmp_path: Path) -> None:
    from courriel.mailauth import dkim
    from tests.outbound.dnsserver import DnsServer

    keys = dkim.generate(tmp_path, "a.test", "s")
    signed = dkim.DkimSigner(tmp_path).sign(b"From: x@a.test\r\nTo: y@b.test\r\nSubject: hi\r\n\r\nbody\r\n", "a.test")
    assert signed is not None
    with DnsServer() as dns:
        for key, record in keys:
            dns.txt(key.dns_name(), record)
        dns.txt("a.test", "v=spf1 ip4:127.0.0.1 -all")
        dns.txt("_dmarc.a.test", "v=DMARC1; p=reject")

        def verified(data: bytes, *extra: str) -> list[tuple[str, str]]:
            run = subprocess.run([sys.executable, "-m", "courriel", "explain", "--json", "--verify", "--dns",
                                  dns.address, *extra, "-"], input=data, capture_output=True, check=True)  # fmt: skip
            return [(r["method"], r["result"]) for r in json.loads(run.stdout)["verified"]]

        assert verified(signed, "--ip", "127.0.0.1", "--mail-from", "x@a.test", "--helo", "mx.a.test") == [
            ("dkim", "pass"), ("dkim", "pass"), ("spf", "pass"), ("dmarc", "pass")]
        assert verified(signed.replace(b"body", b"b0dy"), "--ip", "192.0.2.9", "--mail-from", "x@a.test") == [
            ("dkim", "fail"), ("dkim", "fail"), ("spf", "fail"), ("dmarc", "fail")]
