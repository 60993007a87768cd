"""EventSource push (RFC 8620 §7.3): a StateChange arrives when mail comes in by SMTP."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator

import httpx

from tests.harness import CourrielServer
from tests.jmap.conftest import Api, message


def read_events(lines: Iterator[str]) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append((kind, line[6:]))
    return events


def test_state_change_on_smtp_delivery(api: Api, server: CourrielServer) -> None:
    state = api.call("Email/get", {"ids": []})["state"]
    timeout = httpx.Timeout(10.0)  # a bounded read: the test fails rather than hangs
    with api.http.stream("GET", "/jmap/eventsource", params={"types": "Email,EmailDelivery", "closeafter": "state", "ping": "0"},
                         timeout=timeout) as stream:  # fmt: skip
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith(":")  # subscribed: the stream is open
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
            smtp.sendmail("bob@example.test", ["alice@example.test"], message("pushed"))
        events = read_events(lines)  # closeafter=state: the server ends the stream after one
    assert len(events) == 1 and events[0][0] == "state"
    change = json.loads(events[0][1])
    assert change["@type"] == "StateChange"
    changed = change["changed"][api.account]
    assert set(changed) == {"Email", "EmailDelivery"}
    assert int(changed["Email"]) > int(state)
    created = api.call("Email/changes", {"sinceState": state})["created"]
    subjects = [e["subject"] for e in api.call("Email/get", {"ids": created, "properties": ["subject"]})["list"]]
    assert "pushed" in subjects


def test_eventsource_bad_parameters(api: Api) -> None:
    r = api.http.get("/jmap/eventsource", params={"types": "Nope", "closeafter": "no", "ping": "0"})
    assert r.status_code == 400
    assert api.http.get("/jmap/eventsource", auth=None).status_code == 401
