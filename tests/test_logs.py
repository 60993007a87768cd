from __future__ import annotations

import imaplib
import json
import logging
import poplib
import re
import smtplib
from pathlib import Path

from courriel.logs import JSONFormatter
from tests.harness import CourrielServer


def test_json_lines_carry_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "courriel.smtp", "levelname": "INFO", "msg": "delivered %s", "args": ("q1",), "queue_id": "q1", "size": 5}
    )
    line = JSONFormatter().format(record)
    data = json.loads(line)
    assert data["message"] == "delivered q1" and data["queue_id"] == "q1" and data["size"] == 5
    assert data["level"] == "info" and data["logger"] == "courriel.smtp" and data["time"].endswith("Z")


def test_serve_logs_one_json_line_per_transaction_login_and_logout(tmp_path: Path) -> None:
    srv = CourrielServer(tmp_path, only=("smtp", "imap", "pop3"), plaintext_auth=True)
    srv.serve_args = ["--log-format", "json"]
    srv.start()
    try:
        with smtplib.SMTP("127.0.0.1", srv.port("smtp")) as smtp:
            smtp.sendmail("x@remote.example", ["alice@example.test"], b"Subject: s\r\n\r\nbody\r\n")
        imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
        imap.login("alice@example.test", "alice-pw")
        imap.logout()
        pop = poplib.POP3("127.0.0.1", srv.port("pop3"))
        pop.user("bob@example.test")
        pop.pass_("bob-pw")
        pop.quit()
    finally:
        srv.stop()
    lines = [json.loads(line) for line in srv.stderr if line.startswith("{")]
    assert len(lines) == len([line for line in srv.stderr if line.strip()])  # nothing but JSON lines
    messages = [entry["message"] for entry in lines]

    def one(pattern: str) -> None:
        assert len([m for m in messages if re.search(pattern, m)]) == 1, (pattern, messages)

    one(r"^smtp id=\w+ ip=127\.0\.0\.1 .*from=<x@remote\.example> to=<alice@example\.test> .*result=250 delivered=1")
    one(r"^imap: alice@example\.test logged in from 127\.0\.0\.1")
    one(r"^imap: alice@example\.test logged out from 127\.0\.0\.1 after \d+ s")
    one(r"^pop3: 127\.0\.0\.1: bob@example\.test logged in, 0 messages")
    one(r"^pop3: 127\.0\.0\.1: bob@example\.test logged out after \d+ s")
