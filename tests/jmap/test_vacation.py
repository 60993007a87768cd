"""VacationResponse (RFC 8621 §8) end to end: set over JMAP (the RFC's requests, httpx), mail
delivered by SMTP (smtplib) gets the auto-reply (in the outbound queue, read through the
store), once per sender within :days, while the user's own Sieve script (installed, edited
and switched with sievelib's ManageSieve client) keeps filing and stays the active one: an
edit applies to the next message, SETACTIVE of another script keeps the vacation; the
reserved "jmap-vacation" cannot be written over ManageSieve; turning it off stops the
replies; dates outside the window don't reply; the HTML body goes out as a MIME reply; the
singleton rules and bad values."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sievelib.managesieve import Client as SieveClient

from tests.harness import CourrielServer, open_data_store
from tests.jmap.conftest import Api

CAROL = ("carol@example.test", "carol-pw")
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:vacationresponse"]
OWN = 'require ["fileinto", "mailbox"];\nif header :contains "subject" "list" { fileinto :create "Lists"; }\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    env = {"COURRIEL_HTTP_TLS": "true", "COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH": "true",
           "COURRIEL_JMAP_VACATION_DAYS": "3"}  # fmt: skip
    with CourrielServer(tmp_path_factory.mktemp("vacation"), users={CAROL[0]: CAROL[1]}, plaintext_auth=True,
                        only=("smtp", "http", "managesieve", "imap"), env=env) as srv:  # fmt: skip
        yield srv


@pytest.fixture
def api(server: CourrielServer) -> Iterator[Api]:
    client = Api(server, auth=CAROL)
    yield client
    client.close()


def sieve(server: CourrielServer) -> SieveClient:
    client = SieveClient("127.0.0.1", server.port("managesieve"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plaintext on loopback
        assert client.connect(CAROL[0], CAROL[1], authmech="PLAIN")
    return client


def send(server: CourrielServer, sender: str, subject: str) -> None:
    data = (f"From: {sender}\r\nTo: {CAROL[0]}\r\nSubject: {subject}\r\nMessage-ID: <{uuid.uuid4().hex}@remote.example>\r\n"
            f"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n").encode()  # fmt: skip
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(sender, [CAROL[0]], data)


async def _replies(server: CourrielServer) -> list[tuple[str, bytes]]:
    store = await open_data_store(server.data)
    try:
        return [(q.recipients[0].address, await store.read_message(q.blob)) for q in await store.list_queue()]
    finally:
        await store.close()


def replies(server: CourrielServer, to: str) -> list[bytes]:
    """The auto-replies queued for ``to`` (the queue keeps them: no outbound worker here)."""
    return [data for rcpt, data in asyncio.run(_replies(server)) if rcpt == to]


def vacation_set(api: Api, patch: dict[str, object]) -> dict[str, object]:
    r = api.raw([["VacationResponse/set", {"accountId": api.account, "update": {"singleton": patch}}, "0"]], USING)
    (name, body, _), *_ = r.json()["methodResponses"]
    assert name == "VacationResponse/set", body
    return body  # type: ignore[no-any-return]


def vacation_get(api: Api) -> dict[str, object]:
    r = api.raw([["VacationResponse/get", {"accountId": api.account}, "0"]], USING)
    (name, body, _), *_ = r.json()["methodResponses"]
    assert name == "VacationResponse/get", body
    (obj,) = body["list"]
    return obj  # type: ignore[no-any-return]


def folder(server: CourrielServer, name: str) -> int:
    """How many messages the mailbox holds, over IMAP (imaplib)."""
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    try:
        imap.login(*CAROL)
        typ, data = imap.select(name, readonly=True)
        return int(data[0] or 0) if typ == "OK" else 0
    finally:
        imap.logout()


def utc(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_vacation_end_to_end(server: CourrielServer, api: Api) -> None:
    session = api.session
    assert "urn:ietf:params:jmap:vacationresponse" in session["capabilities"]
    assert session["primaryAccounts"]["urn:ietf:params:jmap:vacationresponse"] == api.account
    ms = sieve(server)
    try:
        assert ms.putscript("main", OWN) and ms.setactive("main")
    finally:
        ms.logout()
    assert vacation_get(api) == {
        "id": "singleton", "isEnabled": False, "fromDate": None, "toDate": None, "subject": None,
        "textBody": None, "htmlBody": None,
    }  # fmt: skip

    r = vacation_set(api, {"isEnabled": True, "fromDate": utc(-timedelta(days=1)), "toDate": utc(timedelta(days=1)),
                           "subject": "Away \"for now\"", "textBody": "Back on Monday.\nCarol"})  # fmt: skip
    assert r["updated"] == {"singleton": None} and r["oldState"] != r["newState"]
    got = vacation_get(api)
    assert got["isEnabled"] is True and got["subject"] == 'Away "for now"' and got["htmlBody"] is None

    ms = sieve(server)
    try:
        active, names = ms.listscripts()
        assert active == "main" and "jmap-vacation" in names, (active, names)  # never the active one
        text = ms.getscript("jmap-vacation")
        assert text and "vacation :days 3" in text and "fileinto" not in text
        # Reserved: no write, delete, rename or activation over ManageSieve.
        assert not ms.putscript("jmap-vacation", "keep;") and b"reserved" in ms.errmsg
        assert not ms.setactive("jmap-vacation") and not ms.deletescript("jmap-vacation")
        assert not ms.renamescript("jmap-vacation", "mine") and not ms.renamescript("main", "jmap-vacation")
        assert ms.getscript("jmap-vacation") == text
    finally:
        ms.logout()

    send(server, "x1@remote.example", "hello one")
    (reply,) = replies(server, "x1@remote.example")
    assert b'Subject: Away "for now"' in reply and b"Back on Monday." in reply and b"Auto-Submitted: auto-replied" in reply
    send(server, "x1@remote.example", "list two")  # :days: no second reply; the own script files it
    assert len(replies(server, "x1@remote.example")) == 1
    assert folder(server, "Lists") == 1

    # The user edits the active script over ManageSieve while away: the next message follows it.
    ms = sieve(server)
    try:
        assert ms.putscript("main", 'require ["fileinto", "mailbox"];\nfileinto :create "Edited";\n')
    finally:
        ms.logout()
    send(server, "x2@remote.example", "hello three")
    assert len(replies(server, "x2@remote.example")) == 1 and folder(server, "Edited") == 1
    # Another script activated over ManageSieve: it files, and the vacation goes on.
    ms = sieve(server)
    try:
        assert ms.putscript("other", 'require ["fileinto", "mailbox"];\nfileinto :create "Other";\n')
        assert ms.setactive("other")
    finally:
        ms.logout()
    assert vacation_get(api)["isEnabled"] is True
    send(server, "x3@remote.example", "hello four")
    assert len(replies(server, "x3@remote.example")) == 1 and folder(server, "Other") == 1

    # Off: no more replies, the user's script untouched and still active, the text kept.
    r = vacation_set(api, {"isEnabled": False})
    assert r["updated"] == {"singleton": None}
    got = vacation_get(api)
    assert got["isEnabled"] is False and got["textBody"] == "Back on Monday.\nCarol"
    ms = sieve(server)
    try:
        assert ms.listscripts()[0] == "other"
        assert "fileinto :create \"Edited\"" in (ms.getscript("main") or "")
    finally:
        ms.logout()
    send(server, "x4@remote.example", "hello five")
    assert replies(server, "x4@remote.example") == [] and folder(server, "Other") == 2

    # A window in the future: no reply yet.
    vacation_set(api, {"isEnabled": True, "fromDate": utc(timedelta(days=2)), "toDate": None})
    send(server, "x4@remote.example", "hello six")
    assert replies(server, "x4@remote.example") == []
    # A window in the past: none either.
    vacation_set(api, {"fromDate": None, "toDate": utc(-timedelta(hours=1))})
    send(server, "x4@remote.example", "hello seven")
    assert replies(server, "x4@remote.example") == []

    # HTML only, no window: a MIME reply.
    vacation_set(api, {"toDate": None, "textBody": None, "htmlBody": "<p>Away</p>", "subject": None})
    send(server, "x5@remote.example", "hello eight")
    (reply,) = replies(server, "x5@remote.example")
    assert b"Content-Type: text/html" in reply and b"<p>Away</p>" in reply and b"Subject: Auto: hello eight" in reply
    vacation_set(api, {"isEnabled": False})


def test_singleton_rules_and_bad_values(api: Api) -> None:
    calls = [
        ["VacationResponse/set", {"accountId": api.account, "create": {"n": {"isEnabled": True}}, "destroy": ["singleton"],
                                  "update": {"other": {"isEnabled": True}}}, "0"],
        ["VacationResponse/set", {"accountId": api.account, "update": {"singleton": {"fromDate": "tomorrow"}}}, "1"],
        ["VacationResponse/set", {"accountId": api.account, "update": {"singleton": {"isEnabled": "yes"}}}, "2"],
        ["VacationResponse/set", {"accountId": api.account, "update": {"singleton": {"color": "red"}}}, "3"],
        ["VacationResponse/set", {"accountId": api.account, "ifInState": "nope", "update": {}}, "4"],
        ["VacationResponse/get", {"accountId": api.account, "ids": ["singleton", "x"], "properties": ["subject"]}, "5"],
    ]  # fmt: skip
    out = api.raw(calls, USING).json()["methodResponses"]
    first = out[0][1]
    assert first["notCreated"]["n"]["type"] == "singleton" and first["notDestroyed"]["singleton"]["type"] == "singleton"
    assert first["notUpdated"]["other"]["type"] == "notFound"
    for i, prop in ((1, "fromDate"), (2, "isEnabled"), (3, "color")):
        assert out[i][1]["notUpdated"]["singleton"] == {
            "type": "invalidProperties", "properties": [prop], "description": f"bad {prop}",
        }, out[i]  # fmt: skip
    assert out[4][0] == "error" and out[4][1]["type"] == "stateMismatch"
    assert out[5][1]["list"] == [{"id": "singleton", "subject": None}] and out[5][1]["notFound"] == ["x"]
    # without the capability in "using", the methods are unknown
    r = api.raw([["VacationResponse/get", {"accountId": api.account}, "0"]], ["urn:ietf:params:jmap:core"])
    assert r.json()["methodResponses"][0][1]["type"] == "unknownMethod"
