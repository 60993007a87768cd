"""/metrics: Prometheus exposition of connections, commands, logins, deliveries, queue, store."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import CourrielServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    srv = CourrielServer(tmp_path_factory.mktemp("metrics"), only=("smtp", "imap", "pop3", "http"), plaintext_auth=True)
    srv.start()
    yield srv
    srv.stop()


def scrape(srv: CourrielServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"http://127.0.0.1:{srv.port('http')}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counts_follow_real_sessions(server: CourrielServer) -> None:
    before = scrape(server)
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as smtp:
        smtp.sendmail("x@remote.example", ["alice@example.test"], b"Subject: m\r\n\r\nhello\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("x@remote.example", ["nobody@example.test"], b"Subject: m\r\n\r\nhello\r\n")
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("alice@example.test", "wrong")
    imap.login("alice@example.test", "alice-pw")
    imap.select("INBOX")
    imap.fetch("1", "(FLAGS)")
    imap.logout()
    pop = poplib.POP3("127.0.0.1", server.port("pop3"))
    pop.user("bob@example.test")
    pop.pass_("bob-pw")
    pop.stat()
    pop.quit()
    after = scrape(server)

    def grew(name: str, by: float = 1, **labels: str) -> None:
        assert value(after, name, **labels) - value(before, name, **labels) >= by, (name, labels)

    grew("courriel_connections_total", listener="smtp")
    grew("courriel_connections_total", listener="imap")
    grew("courriel_connections_total", listener="pop3")
    grew("courriel_commands_total", protocol="imap", command="LOGIN", by=2)
    grew("courriel_commands_total", protocol="imap", command="FETCH")
    grew("courriel_commands_total", protocol="pop3", command="STAT")
    grew("courriel_commands_total", protocol="smtp", command="DATA")
    grew("courriel_logins_total", protocol="imap", result="failure")
    grew("courriel_logins_total", protocol="imap", result="success")
    grew("courriel_logins_total", protocol="pop3", result="success")
    grew("courriel_deliveries_total", protocol="smtp", result="accepted")
    grew("courriel_command_duration_seconds_count", protocol="imap", by=4)
    assert value(after, "courriel_store_messages") >= 1
    assert value(after, "courriel_store_users") == 2
    assert value(after, "courriel_queue_messages") == 0
    # An unknown command does not create a label of its own.
    assert not any(name == "courriel_commands_total" and ("command", "XYZZY") in labels for name, labels in after)


def test_refused_outside_allowed_networks(tmp_path: Path) -> None:
    srv = CourrielServer(tmp_path, only=("http",), env={"COURRIEL_HTTP_METRICS_ALLOW": "192.0.2.0/24"})
    srv.start()
    try:
        r = httpx.get(f"http://127.0.0.1:{srv.port('http')}/metrics")
        assert r.status_code == 403
    finally:
        srv.stop()


def test_bad_allow_list_stops_the_start(tmp_path: Path) -> None:
    srv = CourrielServer(tmp_path, only=("http",), env={"COURRIEL_HTTP_METRICS_ALLOW": "not-a-network"})
    with pytest.raises(RuntimeError, match=r"http\.metrics_allow"):
        srv.start()
