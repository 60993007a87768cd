"""The journey without transcripts (tracing off): a message delivered by SMTP through a Sieve
script (fileinto plus keep), retrieved by poplib RETR from INBOX, then by imaplib FETCH BODY[]
from the folder; `courriel journey` shows ③ with the folders and Sieve actions, ④ POP3 and
⑤ IMAP in order with times, clients and protocols, from the message events alone."""

from __future__ import annotations

import imaplib
import json
import poplib
import smtplib
from collections.abc import Iterator

import pytest

from tests.harness import CourrielServer
from tests.outbound.conftest import wait_for
from tests.sieve.conftest import install

ALICE, PASSWORD = "alice@example.test", "alice-Pw-1"
SCRIPT = 'require ["fileinto", "mailbox"];\nif header :contains "subject" "journey" { fileinto :create "Lists"; keep; }\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    env = {"COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH": "true"}
    with CourrielServer(tmp_path_factory.mktemp("events"), users={ALICE: PASSWORD}, plaintext_auth=True,
                        only=("smtp", "imap", "pop3", "managesieve"), env=env) as srv:  # fmt: skip
        yield srv


def test_journey_from_events(server: CourrielServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.sieve.conftest.USERS", {ALICE: PASSWORD})
    install(server, ALICE, SCRIPT)
    message = (f"From: bob@example.org\r\nTo: {ALICE}\r\nSubject: journey events\r\n"
               "Message-ID: <journey-events@example.org>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nhi\r\n")  # fmt: skip
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail("bob@example.org", [ALICE], message.encode())

    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    pop.user(ALICE)
    pop.pass_(PASSWORD)
    assert b"journey events" in b"\r\n".join(pop.retr(1)[1])
    pop.quit()
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    imap.login(ALICE, PASSWORD)
    imap.select("Lists")
    typ, data = imap.fetch("1", "(BODY[])")
    first = data[0]
    assert typ == "OK" and isinstance(first, tuple) and b"journey events" in first[1]
    imap.logout()

    def journey() -> dict[str, object] | None:
        found = json.loads(server.cli("journey", ALICE, "<journey-events@example.org>", "--json").stdout)
        return found if {4, 5} <= {s["step"] for s in found["steps"]} else None

    found = wait_for(journey, what="the retrievals in the journey")
    steps = found["steps"]
    assert [s["step"] for s in steps] == [2, 3, 4, 5], steps
    delivery, pop3, imap_step = steps[1:]
    assert delivery["mailboxes"] == ["Lists", "INBOX"] and delivery["recipient"] == ALICE
    assert delivery["actions"] == ["fileinto Lists", "keep"], delivery
    assert pop3["protocol"] == "POP3" and pop3["client"].startswith("127.0.0.1:") and not pop3["peek"]
    assert imap_step["protocol"] == "IMAP" and imap_step["client"].startswith("127.0.0.1:")
    assert pop3["transcript"] is None and imap_step["transcript"] is None  # tracing off
    assert not list((server.data / "traces").glob("*/*.jsonl"))
    times = [s["time"] for s in steps[1:]]
    assert all(times) and times == sorted(times)

    text = server.cli("journey", ALICE, "journey-events@example.org").stdout
    assert "actions: fileinto Lists; keep" in text and "mailbox Lists, INBOX" in text
    assert text.index("③") < text.index("④") < text.index("⑤")
    assert "POP3 client 127.0.0.1:" in text and "IMAP client 127.0.0.1:" in text
