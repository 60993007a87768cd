"""JMAP retrievals in the journey (courriel.trace.events): a message delivered by SMTP
(smtplib) and read with Email/get bodyValues (httpx, the RFC's request) shows a "retrieved"
event with protocol JMAP and the client's address in `courriel journey` (step ⑤), once per
request however often the request names it; a download of the whole message's blob counts
too; metadata, headers and the body structure without content do not."""

from __future__ import annotations

import json
import smtplib

from tests.harness import CourrielServer
from tests.jmap.conftest import Api
from tests.outbound.conftest import wait_for


def _deliver(server: CourrielServer, tag: str) -> str:
    message_id = f"jmap-{tag}@example.org"
    data = (f"From: bob@example.org\r\nTo: alice@example.test\r\nSubject: retrieval {tag}\r\n"
            f"Message-ID: <{message_id}>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nbody of {tag}\r\n").encode()  # fmt: skip
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail("bob@example.org", ["alice@example.test"], data)
    return message_id


def _email_id(api: Api, tag: str) -> str:
    ids = api.call("Email/query", {"filter": {"subject": f"retrieval {tag}"}})["ids"]
    assert len(ids) == 1, ids
    return str(ids[0])


def _journey(server: CourrielServer, message_id: str) -> dict[str, object]:
    found = json.loads(server.cli("journey", "alice@example.test", f"<{message_id}>", "--json").stdout)
    assert isinstance(found, dict)
    return found


def _jmap_steps(server: CourrielServer, message_id: str) -> list[dict[str, object]]:
    steps = _journey(server, message_id)["steps"]
    assert isinstance(steps, list)
    return [s for s in steps if s.get("protocol") == "JMAP"]


def test_body_values_and_download_are_retrievals(server: CourrielServer, api: Api) -> None:
    read_id, fetched_id, untouched_id = (_deliver(server, t) for t in ("read", "fetched", "untouched"))
    read, fetched, untouched = (_email_id(api, t) for t in ("read", "fetched", "untouched"))

    # Not retrievals: metadata, header fields, the structure without body values.
    api.call("Email/get", {"ids": [untouched], "properties": ["subject", "from", "bodyStructure", "preview"]})
    # One request naming the message twice: one event.
    r = api.raw([
        ["Email/get", {"accountId": api.account, "ids": [read], "properties": ["bodyValues"],
                       "fetchTextBodyValues": True}, "a"],
        ["Email/get", {"accountId": api.account, "ids": [read], "properties": ["bodyValues", "textBody"],
                       "fetchAllBodyValues": True}, "b"],
    ])  # fmt: skip
    first = r.json()["methodResponses"][0][1]["list"][0]["bodyValues"]
    assert any("body of read" in v["value"] for v in first.values())
    # A download of the whole message's blob.
    blob = api.call("Email/get", {"ids": [fetched], "properties": ["blobId"]})["list"][0]["blobId"]
    got = api.http.get(f"/jmap/download/{api.account}/{blob}/m.eml")
    assert got.status_code == 200 and b"body of fetched" in got.content

    steps = wait_for(lambda: _jmap_steps(server, read_id), what="the JMAP retrieval in the journey")
    assert len(steps) == 1, steps
    (step,) = steps
    assert step["step"] == 5 and step["title"] == "retrieval by JMAP"
    assert isinstance(step["client"], str) and step["client"].startswith("127.0.0.1:")
    assert len(wait_for(lambda: _jmap_steps(server, fetched_id), what="the download in the journey")) == 1
    text = server.cli("journey", "alice@example.test", read_id).stdout
    assert "⑤" in text and "JMAP client 127.0.0.1:" in text
    # The untouched one was delivered (③) and never retrieved: the writes above are done, so
    # an event for it would be there too (they were made in the same order).
    assert _jmap_steps(server, untouched_id) == []
    steps = _journey(server, untouched_id)["steps"]
    assert isinstance(steps, list) and 3 in {s["step"] for s in steps}
