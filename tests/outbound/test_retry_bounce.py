"""Delivery to a scripted remote MX: success, 451 then 250 (retry), 550 (bounce), null MX."""

from __future__ import annotations

import smtplib
import threading
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.harness import CourrielServer
from tests.outbound.conftest import Sink, inbox, outbound_env, parse, queue_listing, wait_for
from tests.outbound.dnsserver import DnsServer


@pytest.fixture
def server(tmp_path: Path, dns: DnsServer, sink: Sink) -> Iterator[CourrielServer]:
    dns.add("remote.test", "MX", "10 mx.remote.test.")
    dns.add("mx.remote.test", "A", "127.0.0.1")
    dns.add("null.test", "MX", "0 .")
    with CourrielServer(tmp_path, plaintext_auth=True, env=outbound_env(dns, sink.port)) as srv:
        yield srv


def submit(srv: CourrielServer, to: list[str], subject: str, **opts: object) -> bytes:
    msg = (
        f"From: Alice <alice@example.test>\r\nTo: {', '.join(to)}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4()}@example.test>\r\n\r\nHello {subject}.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", srv.port("submission")) as c:
        c.login("alice@example.test", "alice-pw")
        c.sendmail("alice@example.test", to, msg, **opts)  # type: ignore[arg-type]
    return msg


def test_delivered_to_the_mx(server: CourrielServer, sink: Sink) -> None:
    msg = submit(server, ["bob@remote.test", "carol@remote.test"], "direct")
    wait_for(lambda: sink.messages, what="delivery")
    got = sink.messages[0]
    assert got.mail_from == "alice@example.test"
    assert sorted(got.rcpts) == ["bob@remote.test", "carol@remote.test"]  # one transaction, both
    assert got.data.endswith(msg)  # our Received line, then the message as submitted
    assert got.data.startswith(b"Received: from ")
    wait_for(lambda: "queue is empty" in queue_listing(server), what="empty queue")
    assert len(sink.messages) == 1


def test_451_is_retried_then_delivered(server: CourrielServer, sink: Sink) -> None:
    sink.data_replies = ["451 4.3.0 try again later", "451 4.3.0 still busy"]
    # The recipient is deferred from the first 451 until the second attempt ends: held
    # until the listing (a CLI run of a few seconds on a busy machine) has seen it.
    sink.hold, sink.hold_at = threading.Event(), 2
    submit(server, ["bob@remote.test"], "retry")
    try:
        listing = wait_for(lambda: (out := queue_listing(server)) and "deferred" in out and out, what="deferral")
    finally:
        sink.hold.set()
    assert "451 4.3.0" in listing and "next " in listing
    wait_for(lambda: sink.messages, what="delivery after retries")
    assert sink.attempts == 3
    wait_for(lambda: "queue is empty" in queue_listing(server), what="empty queue")
    assert len(sink.messages) == 1
    assert inbox(server, "alice@example.test") == []  # no bounce, no delay warning


def test_550_bounces_to_the_sender(server: CourrielServer, sink: Sink) -> None:
    sink.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 <nobody@remote.test>: no such user"]
    original = submit(server, ["nobody@remote.test", "bob@remote.test"], "bounce",
                      rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;nobody@remote.test"])  # fmt: skip
    box = wait_for(lambda: inbox(server, "alice@example.test"), what="bounce")
    wait_for(lambda: sink.messages, what="delivery to bob")
    assert sink.messages[0].rcpts == ["bob@remote.test"]
    assert len(box) == 1
    report = parse(box[0])
    assert box[0].startswith(b"Return-Path: <>\r\n")  # RFC 5321 §4.5.5: a bounce has the null sender
    assert report["To"].addresses[0].addr_spec == "alice@example.test"
    assert report["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.test"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    text, status, returned = report.get_payload()  # type: ignore[misc]
    assert "nobody@remote.test" in text.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_rcpt = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mail.example.test"
    assert per_rcpt["Final-Recipient"] == "rfc822; nobody@remote.test"
    assert per_rcpt["Original-Recipient"] == "rfc822;nobody@remote.test"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mx.remote.test"
    assert "550 5.1.1" in per_rcpt["Diagnostic-Code"]
    assert returned.get_content_type() == "message/rfc822"
    assert original in box[0]  # RET absent: the whole message comes back
    wait_for(lambda: "queue is empty" in queue_listing(server), what="empty queue")


def test_ret_hdrs_returns_only_the_header(server: CourrielServer, sink: Sink) -> None:
    sink.rcpt_replies["gone@remote.test"] = ["554 5.7.1 refused"]
    submit(server, ["gone@remote.test"], "headers-only", mail_options=["RET=HDRS", "ENVID=abc123"])
    box = wait_for(lambda: inbox(server, "alice@example.test"), what="bounce")
    report = parse(box[0])
    _, status, returned = report.get_payload()  # type: ignore[misc]
    assert status.get_payload()[0]["Original-Envelope-Id"] == "abc123"
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"Subject: headers-only" in box[0] and b"Hello headers-only." not in box[0]


def test_notify_never_and_null_mx(server: CourrielServer, sink: Sink) -> None:
    submit(server, ["x@null.test"], "never", rcpt_options=["NOTIFY=NEVER"])
    submit(server, ["y@null.test"], "nullmx")
    box = wait_for(lambda: inbox(server, "alice@example.test"), what="bounce")
    wait_for(lambda: "queue is empty" in queue_listing(server), what="empty queue")
    assert len(box) == 1  # NOTIFY=NEVER: no report for x
    per_rcpt = parse(box[0]).get_payload()[1].get_payload()[1]  # type: ignore[index,union-attr]
    assert per_rcpt["Final-Recipient"] == "rfc822; y@null.test"
    assert per_rcpt["Status"] == "5.1.10"
    assert sink.attempts == 0


def reports(srv: CourrielServer) -> dict[tuple[str, str], EmailMessage]:
    """(action, final recipient) -> the report."""
    out = {}
    for data in inbox(srv, "alice@example.test"):
        msg = parse(data)
        for block in msg.get_payload()[1].get_payload()[1:]:  # type: ignore[index,union-attr]
            out[(str(block["Action"]), str(block["Final-Recipient"]).split("; ")[1])] = msg
    return out


def test_delay_warning_expiry_and_success_notice(tmp_path: Path, dns: DnsServer, sink: Sink) -> None:
    dns.add("remote.test", "MX", "10 mx.remote.test.")
    dns.add("mx.remote.test", "A", "127.0.0.1")
    env = outbound_env(dns, sink.port, COURRIEL_OUTBOUND_DELAY_WARNING="1", COURRIEL_OUTBOUND_LIFETIME="8")
    sink.rcpt_replies["slow@remote.test"] = ["451 4.2.0 busy"] * 2 + ["250 OK"]
    sink.rcpt_replies["never@remote.test"] = ["451 4.2.0 busy"]
    with CourrielServer(tmp_path, plaintext_auth=True, env=env) as srv:
        submit(srv, ["slow@remote.test"], "slow")
        submit(srv, ["never@remote.test"], "never")
        submit(srv, ["ok@remote.test"], "ok", rcpt_options=["NOTIFY=SUCCESS"])
        wanted = {("delayed", "slow@remote.test"), ("delayed", "never@remote.test"),
                  ("failed", "never@remote.test"), ("relayed", "ok@remote.test")}  # fmt: skip
        found = wait_for(lambda: (r := reports(srv)) and wanted <= set(r) and r, what="four reports")
        wait_for(lambda: "queue is empty" in queue_listing(srv), what="empty queue")
        assert set(reports(srv)) == wanted  # one warning each, nothing twice
    assert found[("delayed", "slow@remote.test")]["Subject"] == "Delayed Mail (still being retried)"
    expired = found[("failed", "never@remote.test")].get_payload()[1].get_payload()[1]  # type: ignore[index,union-attr]
    assert expired["Status"] == "4.4.7" and "451 4.2.0 busy" in expired["Diagnostic-Code"]
    delayed = found[("delayed", "never@remote.test")].get_payload()[1].get_payload()[1]  # type: ignore[index,union-attr]
    assert delayed["Will-Retry-Until"]
    assert sorted(r for m in sink.messages for r in m.rcpts) == ["ok@remote.test", "slow@remote.test"]
