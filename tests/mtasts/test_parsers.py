"""Pure parts of MTA-STS and TLS-RPT: tables of raw records, policies and responses."""

from __future__ import annotations

import gzip
import json

import pytest

from courriel.queue.mtasts import (
    PolicyError,
    mx_matches,
    parse_http_response,
    parse_policy,
    parse_txt,
)
from courriel.queue.tlsrpt import build_mail, build_reports, classify_tls_error, parse_rua
from tests.outbound.conftest import parse

TXT = [
    ([b"v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
    ([b"v=STSv1;id=abc"], "abc"),
    ([b"v=spf1 -all", b"v=STSv1; id=x1"], "x1"),
    ([b"v=spf1 -all"], None),
    ([], None),
    ([b"v=STSv10; id=1"], None),  # not STSv1
]


@pytest.mark.parametrize(("records", "expected"), TXT)
def test_txt(records: list[bytes], expected: str | None) -> None:
    assert parse_txt(records) == expected


@pytest.mark.parametrize("records", [[b"v=STSv1; id=1", b"v=STSv1; id=2"], [b"v=STSv1;"], [b"v=STSv1; id=a-b"],
                                     [b"v=STSv1; id=" + b"a" * 33]])  # fmt: skip
def test_txt_invalid(records: list[bytes]) -> None:
    with pytest.raises(PolicyError):
        parse_txt(records)


def test_policy_rfc_example() -> None:
    text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n"
    p = parse_policy(text, "example.com", "1")
    assert (p.mode, p.max_age, p.mx) == ("enforce", 604800, ("mail.example.com", "*.example.net", "backupmx.example.com"))
    assert p.matches("mx1.example.net") and p.matches("MAIL.example.com.")
    assert not p.matches("a.b.example.net") and not p.matches("example.net") and not p.matches("evil.com")


@pytest.mark.parametrize(
    "text",
    [
        "mode: enforce\nmx: a\nmax_age: 1\n",  # no version
        "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: a\nmax_age: soon\n",
        "version: STSv1\nmode: enforce\nmax_age: 10\n",  # no mx
        "version: STSv1\nmode enforce\n",
    ],
)
def test_policy_invalid(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text, "d", "1")


def test_policy_none_needs_no_mx_and_max_age_capped() -> None:
    p = parse_policy("version: STSv1\nmode: none\nmax_age: 9999999999\n", "d", "1")
    assert (p.mode, p.max_age) == ("none", 31557600)
    with pytest.raises(PolicyError):  # §3.2: at most 10 digits
        parse_policy("version: STSv1\nmode: none\nmax_age: 99999999999\n", "d", "1")


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [("mx.a.test", "mx.a.test", True), ("*.a.test", "mx.a.test", True), ("*.a.test", "a.test", False),
     ("*.a.test", "x.mx.a.test", False), ("mx.a.test", "mx.b.test", False), ("*.a.test", ".a.test", False)],
)  # fmt: skip
def test_mx_match(pattern: str, host: str, ok: bool) -> None:
    assert mx_matches(pattern, host) is ok


HTTP = [
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello+junk", (200, b"hello")),
    (b"HTTP/1.0 301 Moved\r\nLocation: https://x/\r\n\r\n", (301, b"")),
    (b"HTTP/1.1 200 OK\r\n\r\nbody to eof", (200, b"body to eof")),
]


@pytest.mark.parametrize(("raw", "expected"), HTTP)
def test_http_response(raw: bytes, expected: tuple[int, bytes]) -> None:
    status, _, body = parse_http_response(raw)
    assert (status, body) == expected


@pytest.mark.parametrize("raw", [b"HTTP/1.1 200 OK\r\n", b"SMTP 220\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello"])
def test_http_response_invalid(raw: bytes) -> None:
    with pytest.raises(PolicyError):
        parse_http_response(raw)


@pytest.mark.parametrize(
    ("records", "rua"),
    [([b"v=TLSRPTv1; rua=mailto:tls@example.com"], ["mailto:tls@example.com"]),
     ([b"v=TLSRPTv1;rua=mailto:a@x.test,https://r.x.test/v1"], ["mailto:a@x.test", "https://r.x.test/v1"]),
     ([b"v=TLSRPTv1; rua=ftp://x"], []), ([b"v=spf1"], []), ([], [])],
)  # fmt: skip
def test_rua(records: list[bytes], rua: list[str]) -> None:
    assert parse_rua(records) == rua


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is not valid for 'x'", "certificate-host-mismatch"),
     ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired", "certificate-expired"),
     ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate", "certificate-not-trusted"),
     ("STARTTLS: 454 TLS not available", "validation-failure")],
)  # fmt: skip
def test_classify(text: str, kind: str) -> None:
    assert classify_tls_error(text) == kind


def test_report_and_mail_round_trip() -> None:
    policy = "version: STSv1\nmode: testing\nmx: mx.t.test\nmax_age: 86400\n"
    base = {"domain": "t.test", "mode": "testing", "mx": ["mx.t.test"], "text": policy, "sending_ip": ""}
    lines = [
        {**base, "success": True, "result": "", "mx_host": "mx.t.test", "ip": "192.0.2.1"},
        {**base, "success": False, "result": "certificate-expired", "mx_host": "mx.t.test", "ip": "192.0.2.1"},
        {**base, "success": False, "result": "certificate-expired", "mx_host": "mx.t.test", "ip": "192.0.2.1"},
    ]
    reports = build_reports(lines, 0, 86400, "mx.sender.test", "mailto:postmaster@sender.test")
    report = reports["t.test"]
    assert report["date-range"] == {"start-datetime": "1970-01-01T00:00:00Z", "end-datetime": "1970-01-02T00:00:00Z"}
    pol = report["policies"][0]
    assert pol["policy"] == {"policy-type": "sts", "policy-string": policy.strip().split("\n"),
                             "policy-domain": "t.test", "mx-host": ["mx.t.test"]}  # fmt: skip
    assert pol["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 2}
    assert pol["failure-details"] == [{"result-type": "certificate-expired", "failed-session-count": 2,
                                       "receiving-mx-hostname": "mx.t.test", "receiving-ip": "192.0.2.1"}]  # fmt: skip
    mail = build_mail(report, "t.test", "mx.sender.test", "postmaster@sender.test", "tls@t.test", 0, 86400)
    msg = parse(mail)
    assert msg["TLS-Report-Domain"] == "t.test" and msg["TLS-Report-Submitter"] == "mx.sender.test"
    assert msg["Subject"] == f"Report Domain: t.test Submitter: mx.sender.test Report-ID: <{report['report-id']}>"
    assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "tlsrpt"
    attachment = msg.get_payload()[1]  # type: ignore[index]
    assert attachment.get_content_type() == "application/tlsrpt+gzip"
    assert attachment.get_filename().startswith("mx.sender.test!t.test!0!86400!")
    assert json.loads(gzip.decompress(attachment.get_payload(decode=True))) == report
