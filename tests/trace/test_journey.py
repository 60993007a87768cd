"""The journey of a message sent by `courriel mail` from alice on server A to bob on server B
(test DNS on loopback), then fetched by IMAP on B: `courriel journey` on B lists the
submission on A, the hop A→B, the delivery on B and the IMAP retrieval, in order, with times
and links to B's transcripts."""

from __future__ import annotations

import imaplib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.trace.journey import parse_received
from tests.client.helpers import Mail
from tests.harness import CourrielServer
from tests.outbound.conftest import inbox, outbound_env, wait_for
from tests.outbound.dnsserver import DnsServer

ALICE, BOB = "alice@a.test", "bob@b.test"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CourrielServer, CourrielServer]]:
    with DnsServer() as dns:
        for domain in ("a.test", "b.test"):
            dns.add(domain, "MX", f"10 mx.{domain}.")
            dns.add(f"mx.{domain}", "A", "127.0.0.1")
            dns.txt(domain, "v=spf1 ip4:127.0.0.1 -all")
        a = CourrielServer(tmp_path_factory.mktemp("a"), domain="a.test", users={ALICE: "alice-Pw-1"},
                           env={"COURRIEL_TRACE_USERS": ALICE})  # fmt: skip
        b = CourrielServer(tmp_path_factory.mktemp("b"), domain="b.test", users={BOB: "bob-Pw-2"}, plaintext_auth=True,
                           env={"COURRIEL_TRACE_USERS": BOB})  # fmt: skip
        b.env.update(outbound_env(dns, 1, COURRIEL_MAILAUTH_ENABLED="true", COURRIEL_OUTBOUND_ENABLED="false"))
        with b:
            # B's ports are final once it runs (the harness re-picks them when one is taken).
            a.env.update(outbound_env(dns, b.port("smtp")))
            with a:
                yield a, b


def test_journey_through_two_servers(net: tuple[CourrielServer, CourrielServer], tmp_path: Path) -> None:
    a, b = net
    mail = Mail(tmp_path / "accounts.toml")
    mail.add_account("alice", ALICE, "alice-Pw-1", imap=(a.port("imap"), "starttls"),
                     smtp=(a.port("submission"), "starttls"), ca_file=a.cert)  # fmt: skip
    body = tmp_path / "body.txt"
    body.write_text("Hello Bob, this travels through two servers.\n")
    mail.run("-a", "alice", "send", "--to", BOB, "--subject", "journey test", "--body", str(body))  # Sent copy kept
    try:
        data = wait_for(lambda: next((m for m in inbox(b, BOB) if b"Subject: journey test" in m), None), what="delivery")
    except AssertionError:
        state = f"B alive: {b.proc is not None and b.proc.poll() is None}, B smtp {b.port('smtp')}, A sends to " \
                f"{a.env['COURRIEL_OUTBOUND_PORT']}"
        raise AssertionError("\n".join([state, "A:", *a.stderr[-5:], "B:", *b.stderr[-30:], *b.output])) from None
    m = re.search(rb"(?im)^Message-ID:\s*<([^>]+)>", data)
    assert m is not None
    message_id = m.group(1).decode()

    imap = imaplib.IMAP4("127.0.0.1", b.port("imap"))
    imap.login(BOB, "bob-Pw-2")
    imap.select("INBOX")
    imap.fetch("1", "(BODY[])")
    imap.logout()

    def journey() -> dict[str, object] | None:
        found = json.loads(b.cli("journey", BOB, f"<{message_id}>", "--json").stdout)
        return found if any(s["step"] == 5 for s in found["steps"]) else None

    found = wait_for(journey, what="the IMAP retrieval in the journey")
    steps = found["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3, 5], steps
    submission, hop, delivery, retrieval = steps
    assert submission["auth"] == ALICE and submission["by"] == "mail.a.test" and submission["tls"]
    assert submission["protocol"].upper() == "ESMTPSA"
    assert hop["by"] == "mail.b.test" and hop["ip"] == "127.0.0.1" and hop["id"]
    assert hop["transcript"] and f"queued as {hop['id']}" in Path(hop["transcript"]).read_text()
    assert delivery["mailbox"] == "INBOX" and delivery["recipient"] == BOB
    assert any(r.startswith("spf=pass") for r in delivery["authentication"]), delivery
    assert retrieval["protocol"] == "IMAP" and retrieval["transcript"]
    times = [s["time"] for s in steps]
    assert all(times) and times == sorted(times)
    assert all(s["delay"] is not None and s["delay"] >= 0 for s in steps[1:])

    text = b.cli("journey", BOB, message_id).stdout
    for mark in ("①", "②", "③", "⑤", "submission", "MTA to MTA hop", "local delivery", "retrieval by IMAP"):
        assert mark in text
    assert text.index("①") < text.index("②") < text.index("③") < text.index("⑤")
    # A recorded alice's submission and its outbound SMTP session to B (traced by sender).
    a_files = [p.read_text() for p in (a.data / "traces").glob("*/*.jsonl")]
    assert any("outbound session" in t and f"queued as {hop['id']}" in t for t in a_files)
    assert not any("alice-Pw-1" in t or "Hello Bob" in t for t in a_files)

    # On A, the journey of alice's Sent copy shows the hop as A made it: the MX its DNS lookup
    # chose (mx.b.test), TLS, B's reply (a "relayed" message event of the outbound queue).
    def sent_journey() -> dict[str, object] | None:
        found = json.loads(a.cli("journey", ALICE, message_id, "--json").stdout)
        return found if any(s.get("mx") for s in found["steps"]) else None

    relayed = next(s for s in wait_for(sent_journey, what="the relayed event")["steps"] if s.get("mx"))
    assert relayed["step"] == 2 and relayed["mx"].startswith("mx.b.test[127.0.0.1]"), relayed
    assert relayed["for"] == BOB and relayed["reply"].startswith("250") and relayed["tls"] == "TLS"
    assert "MX mx.b.test[127.0.0.1]" in a.cli("journey", ALICE, message_id).stdout


def test_missing_message(net: tuple[CourrielServer, CourrielServer]) -> None:
    _, b = net
    with pytest.raises(RuntimeError, match="has no message"):
        b.cli("journey", BOB, "<nope@x>")


@pytest.mark.parametrize(("value", "expected"), [
    ("from client.test ([127.0.0.1])\r\n\tby mail.a.test (courriel) with ESMTPSA id 7f3a\r\n"
     "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n\t(authenticated as alice@a.test)\r\n"
     "\tfor <bob@b.test>; Sun, 29 Nov 2026 03:00:00 +0000",
     {"from": "client.test", "ip": "127.0.0.1", "by": "mail.a.test", "with": "ESMTPSA", "id": "7f3a",
      "for": "bob@b.test", "tls": "TLSv1.3 TLS_AES_256_GCM_SHA384", "auth": "alice@a.test"}),
    ("from mx.example.net (mx.example.net [192.0.2.7]) by mx.b.test (Postfix) with ESMTP id ABC;"
     " Sun, 29 Nov 2026 03:00:05 +0100",
     {"from": "mx.example.net", "ip": "192.0.2.7", "by": "mx.b.test", "with": "ESMTP", "id": "ABC"}),
])
def test_parse_received(value: str, expected: dict[str, str]) -> None:
    got = parse_received(value)
    assert got.pop("date") is not None
    assert got == expected
