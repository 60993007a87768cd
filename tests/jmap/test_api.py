"""Raw JMAP requests (httpx): the RFC 8620/8621 examples, errors, /changes after IMAP, blobs."""

from __future__ import annotations

import imaplib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import CourrielServer
from tests.jmap.conftest import USING, Api, message


@pytest.fixture
def imap(server: CourrielServer) -> Iterator[imaplib.IMAP4]:
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    client.login("alice@example.test", "alice-pw")
    yield client
    client.logout()


def test_session_resource(api: Api) -> None:
    s = api.session
    assert s["username"] == "alice@example.test"
    assert set(s["capabilities"]) == {*USING, "urn:ietf:params:jmap:vacationresponse"}
    core = s["capabilities"]["urn:ietf:params:jmap:core"]
    assert core["maxCallsInRequest"] == 16 and core["maxSizeUpload"] == 100000
    assert s["apiUrl"].endswith("/jmap/api") and "{blobId}" in s["downloadUrl"] and "{accountId}" in s["uploadUrl"]
    assert "{closeafter}" in s["eventSourceUrl"]
    assert api.http.get("/.well-known/jmap").json() == s
    r = api.http.get("/jmap/session", auth=None)
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]


def test_request_level_errors(api: Api) -> None:
    r = api.http.post("/jmap/api", content=b"{not json")
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "urn:ietf:params:jmap:error:notJSON"
    r = api.http.post("/jmap/api", json={"using": USING})
    assert r.json()["type"] == "urn:ietf:params:jmap:error:notRequest"
    r = api.raw([], using=["urn:example:nope"])
    assert r.json()["type"] == "urn:ietf:params:jmap:error:unknownCapability"
    r = api.raw([["Core/echo", {}, str(i)] for i in range(17)])
    assert r.json()["type"] == "urn:ietf:params:jmap:error:limit" and r.json()["limit"] == "maxCallsInRequest"


def test_method_level_errors(api: Api) -> None:
    r = api.raw([["Core/echo", {"hello": True}, "a"], ["Nope/get", {}, "b"], ["Mailbox/get", {"accountId": "A999"}, "c"]])
    assert r.json()["methodResponses"] == [
        ["Core/echo", {"hello": True}, "a"],
        ["error", {"type": "unknownMethod", "description": "Nope/get is not known (or its capability not used)"}, "b"],
        ["error", {"type": "accountNotFound"}, "c"],
    ]
    # a capability not in "using": the method is unknown (RFC 8620 §3.6.2)
    r = api.raw([["Mailbox/get", {"accountId": api.account}, "a"]], using=["urn:ietf:params:jmap:core"])
    assert r.json()["methodResponses"][0][1]["type"] == "unknownMethod"
    assert api.error("Email/get", {"ids": "M1"})["type"] == "invalidArguments"
    assert api.error("Email/get", {"properties": ["header:From:asDate"]})["type"] == "invalidArguments"
    assert api.error("Email/query", {"filter": {"nope": 1}})["type"] == "unsupportedFilter"
    assert api.error("Email/query", {"sort": [{"property": "nope"}]})["type"] == "unsupportedSort"
    many = {"operator": "OR", "conditions": [{"subject": str(i)} for i in range(17)]}
    assert api.error("Email/query", {"filter": many})["type"] == "unsupportedFilter"
    deep: dict[str, object] = {"subject": "x"}
    for _ in range(20):
        deep = {"operator": "NOT", "conditions": [deep]}
    assert api.error("Email/query", {"filter": deep})["type"] == "invalidArguments"
    assert api.error("Email/changes", {"sinceState": "x"})["type"] == "cannotCalculateChanges"
    assert api.error("Email/get", {"ids": [f"M{i}" for i in range(1001)]})["type"] == "requestTooLarge"


def import_message(api: Api, data: bytes, box: str, keywords: dict[str, bool] | None = None) -> dict[str, object]:
    up = api.http.post(f"/jmap/upload/{api.account}", content=data, headers={"Content-Type": "message/rfc822"})
    assert up.status_code == 201, up.text
    blob = up.json()
    assert blob["size"] == len(data) and blob["type"] == "message/rfc822"
    resp = api.call("Email/import", {"emails": {"i": {"blobId": blob["blobId"], "mailboxIds": {box: True}, "keywords": keywords or {}}}})
    assert resp["created"] and "i" in resp["created"], resp
    return resp["created"]["i"]  # type: ignore[no-any-return]


def test_result_references_rfc8620_example(api: Api) -> None:
    """RFC 8620 §3.7: query, then get the threads of the results, then their emails."""
    inbox = api.mailbox("inbox")
    first = import_message(api, message("refs root"), inbox)
    second = import_message(api, message("Re: refs root", extra=f"In-Reply-To: <{abs(hash('refs root'))}@example.test>\r\n"), inbox)
    assert first["threadId"] == second["threadId"]
    calls = [
        ["Email/query", {"accountId": api.account, "filter": {"inMailbox": inbox, "subject": "refs root"},
                         "sort": [{"property": "receivedAt", "isAscending": False}], "collapseThreads": True,
                         "position": 0, "limit": 10, "calculateTotal": True}, "t0"],
        ["Email/get", {"accountId": api.account, "#ids": {"resultOf": "t0", "name": "Email/query", "path": "/ids"},
                       "properties": ["threadId"]}, "t1"],
        ["Thread/get", {"accountId": api.account, "#ids": {"resultOf": "t1", "name": "Email/get", "path": "/list/*/threadId"}}, "t2"],
        ["Email/get", {"accountId": api.account, "#ids": {"resultOf": "t2", "name": "Thread/get", "path": "/list/*/emailIds"},
                       "properties": ["from", "receivedAt", "subject"]}, "t3"],
    ]  # fmt: skip
    out = api.raw(calls).json()["methodResponses"]
    assert [o[0] for o in out] == ["Email/query", "Email/get", "Thread/get", "Email/get"]
    assert out[0][1]["total"] == 1  # collapsed into one thread
    assert out[2][1]["list"] == [{"id": first["threadId"], "emailIds": [first["id"], second["id"]]}]
    assert [e["subject"] for e in out[3][1]["list"]] == ["refs root", "Re: refs root"]
    broken: dict[str, Any] = dict(calls[1][1])  # type: ignore[arg-type]
    broken["#ids"] = {"resultOf": "t0", "name": "Email/query", "path": "/nope"}
    bad = api.raw([calls[0], [calls[1][0], broken, "t1"]])
    assert bad.json()["methodResponses"][1][1]["type"] == "invalidResultReference"


def test_state_mismatch_and_set_errors(api: Api) -> None:
    state = api.call("Email/get", {"ids": []})["state"]
    inbox = api.mailbox("inbox")
    eid = import_message(api, message("state test"), inbox)["id"]
    err = api.error("Email/set", {"ifInState": state, "update": {eid: {"keywords/$seen": True}}})
    assert err["type"] == "stateMismatch"
    now = api.call("Email/get", {"ids": []})["state"]
    ok = api.call("Email/set", {"ifInState": now, "update": {eid: {"keywords/$seen": True}}})
    assert ok["oldState"] == now and ok["newState"] != now and eid in ok["updated"]
    bad = api.call("Email/set", {"update": {eid: {"subject": "x"}, "M999999": {"keywords": {}}},
                                 "create": {"n": {"mailboxIds": {}}}})  # fmt: skip
    assert bad["notUpdated"][eid]["type"] == "invalidProperties"
    assert bad["notUpdated"]["M999999"]["type"] == "notFound"
    assert bad["notCreated"]["n"]["type"] == "invalidProperties"


def test_mailbox_set_and_changes(api: Api) -> None:
    state = api.call("Mailbox/get", {"ids": []})["state"]
    made = api.call("Mailbox/set", {"create": {"p": {"name": "Projects"}, "c": {"name": "Alpha", "parentId": "#p"}}})
    parent, child = made["created"]["p"]["id"], made["created"]["c"]["id"]
    got = {m["id"]: m for m in api.call("Mailbox/get", {"ids": [parent, child]})["list"]}
    assert got[child]["parentId"] == parent and got[child]["name"] == "Alpha"
    ch = api.call("Mailbox/changes", {"sinceState": state})
    assert set(ch["created"]) == {parent, child} and not ch["destroyed"]
    state = ch["newState"]
    api.call("Mailbox/set", {"update": {child: {"name": "Beta"}}})
    assert api.call("Mailbox/get", {"ids": [child]})["list"][0]["name"] == "Beta"
    refused = api.call("Mailbox/set", {"destroy": [parent, api.mailbox("inbox")]})
    assert refused["notDestroyed"][parent]["type"] == "mailboxHasChild"
    assert refused["notDestroyed"][api.mailbox("inbox")]["type"] == "forbidden"
    api.call("Mailbox/set", {"destroy": [child]})
    ch = api.call("Mailbox/changes", {"sinceState": state})
    assert ch["destroyed"] == [child]
    q = api.call("Mailbox/query", {"filter": {"role": "inbox"}})
    assert q["ids"] == [api.mailbox("inbox")]


def test_changes_after_imap(api: Api, imap: imaplib.IMAP4) -> None:
    inbox = api.mailbox("inbox")
    state = api.call("Email/get", {"ids": []})["state"]
    query = {"filter": {"inMailbox": inbox}, "sort": [{"property": "receivedAt", "isAscending": False}]}
    qstate = api.call("Email/query", query)["queryState"]
    typ, _ = imap.append("INBOX", "", None, message("from imap"))
    assert typ == "OK"
    ch = api.call("Email/changes", {"sinceState": state})
    assert len(ch["created"]) == 1 and not ch["updated"] and not ch["destroyed"]
    new = ch["created"][0]
    got = api.call("Email/get", {"ids": [new], "properties": ["subject", "mailboxIds"]})["list"][0]
    assert got["subject"] == "from imap" and got["mailboxIds"] == {inbox: True}
    qc = api.call("Email/queryChanges", {**query, "sinceQueryState": qstate})
    assert qc["added"] == [{"id": new, "index": 0}]

    state = ch["newState"]
    imap.select("INBOX")
    typ, found = imap.search(None, "SUBJECT", '"from imap"')
    uid = found[0].split()[-1]
    imap.store(uid, "+FLAGS", "(\\Flagged)")
    ch = api.call("Email/changes", {"sinceState": state})
    assert ch["updated"] == [new] and not ch["created"]
    assert api.call("Email/get", {"ids": [new], "properties": ["keywords"]})["list"][0]["keywords"] == {"$flagged": True}

    state = ch["newState"]
    imap.store(uid, "+FLAGS", "(\\Deleted)")
    imap.expunge()
    ch = api.call("Email/changes", {"sinceState": state})
    assert ch["destroyed"] == [new]
    qc = api.call("Email/queryChanges", {**query, "sinceQueryState": state})
    assert new in qc["removed"] and all(a["id"] != new for a in qc["added"])
    th = api.call("Thread/changes", {"sinceState": state})
    assert th["destroyed"] or th["updated"]


def test_blobs_import_parse(api: Api) -> None:
    multi = (
        b"From: Bob <bob@example.test>\r\nTo: Alice <alice@example.test>, team: c@x.test;\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nList-Post: <mailto:list@example.test>\r\n"
        b"Date: Tue, 1 Jul 2025 10:52:37 +0200\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"caf\xc3\xa9 body\r\n--b\r\nContent-Type: application/octet-stream; name=x.bin\r\n"
        b"Content-Disposition: attachment; filename=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n"
    )
    up = api.http.post(f"/jmap/upload/{api.account}", content=multi, headers={"Content-Type": "message/rfc822"}).json()
    blob = up["blobId"]
    down = api.http.get(f"/jmap/download/{api.account}/{blob}/m.eml", params={"accept": "message/rfc822"})
    assert down.status_code == 200 and down.content == multi and down.headers["content-type"] == "message/rfc822"
    assert api.http.get(f"/jmap/download/{api.account}/Unope/x").status_code == 404
    assert api.http.get(f"/jmap/download/A999/{blob}/x").status_code == 404

    parsed = api.call("Email/parse", {"blobIds": [blob, "Umissing"], "fetchAllBodyValues": True,
                                      "properties": ["subject", "from", "header:To:asGroupedAddresses", "header:List-Post:asURLs",
                                                     "sentAt", "bodyStructure", "bodyValues", "attachments", "textBody"]})  # fmt: skip
    assert parsed["notFound"] == ["Umissing"]
    email = parsed["parsed"][blob]
    assert email["subject"] == "Grüße" and email["from"] == [{"name": "Bob", "email": "bob@example.test"}]
    assert email["header:To:asGroupedAddresses"] == [
        {"name": None, "addresses": [{"name": "Alice", "email": "alice@example.test"}]},
        {"name": "team", "addresses": [{"name": None, "email": "c@x.test"}]},
    ]
    assert email["header:List-Post:asURLs"] == ["mailto:list@example.test"]
    assert email["sentAt"] == "2025-07-01T10:52:37+02:00"
    assert email["bodyStructure"]["type"] == "multipart/mixed" and len(email["bodyStructure"]["subParts"]) == 2
    (att,) = email["attachments"]
    assert att["name"] == "x.bin" and att["size"] == 4 and att["disposition"] == "attachment"
    assert email["bodyValues"][email["textBody"][0]["partId"]]["value"] == "café body"
    part = api.http.get(f"/jmap/download/{api.account}/{att['blobId']}/x.bin")
    assert part.content == b"\x00\x01\x02\x03"

    inbox = api.mailbox("inbox")
    created = api.call("Email/import", {"emails": {"m": {"blobId": blob, "mailboxIds": {inbox: True}, "keywords": {"$seen": True}}}})["created"]["m"]
    got = api.call("Email/get", {"ids": [created["id"]], "properties": ["hasAttachment", "keywords", "size", "blobId", "preview"],
                                 "bodyProperties": ["partId", "type"]})["list"][0]  # fmt: skip
    assert got["hasAttachment"] is True and got["keywords"] == {"$seen": True} and got["size"] == len(multi)
    assert api.http.get(f"/jmap/download/{api.account}/{got['blobId']}/m.eml").content == multi

    big = api.http.post(f"/jmap/upload/{api.account}", content=b"x" * 100_001)
    assert big.status_code == 413 and big.json()["limit"] == "maxSizeUpload"
    missing = api.call("Email/import", {"emails": {"z": {"blobId": "U" + "0" * 48, "mailboxIds": {inbox: True}}}})
    assert missing["notCreated"]["z"]["type"] == "blobNotFound"


def test_search_and_snippets(api: Api) -> None:
    inbox = api.mailbox("inbox")
    eid = import_message(api, message("needle in a haystack", body="the unusual word zebracorn appears here"), inbox)["id"]
    import_message(api, message("nothing here", body="plain text"), inbox)
    q = api.call("Email/query", {"filter": {"body": "zebracorn"}})
    assert q["ids"] == [eid]
    q = api.call("Email/query", {"filter": {"operator": "AND", "conditions": [{"text": "zebracorn"}, {"from": "bob@example.test"}]}})
    assert q["ids"] == [eid]
    q = api.call("Email/query", {"filter": {"inMailbox": inbox, "body": "zebracorn"},
                                 "sort": [{"property": "hasKeyword", "keyword": "$seen"}]})  # fmt: skip
    assert q["ids"] == [eid]
    q = api.call("Email/query", {"filter": {"operator": "OR", "conditions": [{"body": "zebracorn"}, {"subject": "nothing here"}]},
                                 "calculateTotal": True})  # fmt: skip
    assert q["total"] == 2 and eid in q["ids"]
    assert api.call("Email/query", {"filter": {"inMailbox": api.mailbox("trash"), "body": "zebracorn"}})["ids"] == []
    q = api.call("Email/query", {"filter": {"operator": "NOT", "conditions": [{"subject": "needle"}]}, "calculateTotal": True})
    assert eid not in q["ids"] and q["total"] >= 1
    snip = api.call("SearchSnippet/get", {"emailIds": [eid], "filter": {"text": "zebracorn"}})
    (s,) = snip["list"]
    assert "<mark>zebracorn</mark>" in s["preview"] and s["subject"] is None
    snip = api.call("SearchSnippet/get", {"emailIds": [eid], "filter": {"subject": "needle"}})
    assert snip["list"][0]["subject"] == "<mark>needle</mark> in a haystack"
    sizes = api.call("Email/query", {"filter": {"inMailbox": inbox}, "sort": [{"property": "size", "isAscending": True}],
                                     "position": 1, "limit": 1})  # fmt: skip
    assert sizes["position"] == 1 and len(sizes["ids"]) == 1
    anchored = api.call("Email/query", {"filter": {"inMailbox": inbox}, "anchor": eid, "anchorOffset": 0, "limit": 1})
    assert anchored["ids"] == [eid]


def test_json_of_every_response_is_strict(api: Api) -> None:
    r = api.raw([["Mailbox/get", {"accountId": api.account}, "0"], ["Email/query", {"accountId": api.account}, "1"]])
    json.loads(r.text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert r.json()["sessionState"] == api.session["state"]


def test_list_properties_from_record_match_the_raw_message(api: Api) -> None:
    """from/to/subject/sentAt/messageId come from the stored envelope for message lists; they
    must equal what parsing the raw header gives (asked with "headers", which reads the bytes)."""
    extra = "Cc: =?utf-8?q?J=C3=B6rg?= <j@example.org>, group: x@example.org;\r\nReferences: <a@b> <c@d>\r\n"
    eid = import_message(api, message("=?utf-8?q?caf=C3=A9?= list", extra=extra), api.mailbox("inbox"))["id"]
    props = ["from", "to", "cc", "bcc", "subject", "sentAt", "messageId", "inReplyTo", "references", "preview"]
    fast = api.call("Email/get", {"ids": [eid], "properties": props})["list"][0]
    slow = api.call("Email/get", {"ids": [eid], "properties": [*props, "headers"]})["list"][0]
    del slow["headers"]
    assert fast == slow
    assert fast["subject"] == "café list" and fast["references"] == ["a@b", "c@d"]
    assert fast["cc"] == [{"name": "Jörg", "email": "j@example.org"}, {"name": None, "email": "x@example.org"}]


def test_create_with_attachment_and_no_header_injection(api: Api) -> None:
    up = api.http.post(f"/jmap/upload/{api.account}", content=b"%PDF-1.4 fake", headers={"Content-Type": "application/pdf"}).json()
    drafts = api.mailbox("drafts")
    created = api.call("Email/set", {"create": {"a": {
        "mailboxIds": {drafts: True}, "subject": "evil\r\nBcc: victim@example.org", "to": [{"email": "bob@example.test"}],
        "textBody": [{"partId": "t", "type": "text/plain"}], "bodyValues": {"t": {"value": "see attached"}},
        "attachments": [{"blobId": up["blobId"], "type": "application/pdf", "name": "doc.pdf"}],
        "header:X-Custom": " hello",
    }}})["created"]["a"]  # fmt: skip
    got = api.call("Email/get", {"ids": [created["id"]], "properties": ["attachments", "subject", "bcc", "header:X-Custom:asText", "headers"]})
    email = got["list"][0]
    assert email["bcc"] is None and email["header:X-Custom:asText"] == "hello"
    assert email["subject"].startswith("evil") and not any(h["name"].lower() == "bcc" for h in email["headers"])
    (att,) = email["attachments"]
    assert att["name"] == "doc.pdf" and att["type"] == "application/pdf"
    assert api.http.get(f"/jmap/download/{api.account}/{att['blobId']}/doc.pdf").content == b"%PDF-1.4 fake"


def test_create_from_body_structure(api: Api) -> None:
    up = api.http.post(f"/jmap/upload/{api.account}", content=b"GIF89a", headers={"Content-Type": "image/gif"}).json()
    structure = {"type": "multipart/mixed", "subParts": [
        {"type": "multipart/alternative", "subParts": [{"partId": "p", "type": "text/plain"}, {"partId": "h", "type": "text/html"}]},
        {"blobId": up["blobId"], "type": "image/gif", "name": "pic.gif", "disposition": "attachment"},
    ]}  # fmt: skip
    made = api.call("Email/set", {"create": {"s": {
        "mailboxIds": {api.mailbox("drafts"): True}, "subject": "structured", "bodyStructure": structure,
        "bodyValues": {"p": {"value": "plain words"}, "h": {"value": "<p>html words</p>"}},
    }}})  # fmt: skip
    eid = made["created"]["s"]["id"]
    got = api.call("Email/get", {"ids": [eid], "properties": ["bodyStructure", "textBody", "htmlBody", "attachments", "bodyValues"],
                                 "fetchAllBodyValues": True})["list"][0]  # fmt: skip
    assert got["bodyStructure"]["type"] == "multipart/mixed"
    values = {v["value"].strip() for v in got["bodyValues"].values()}
    assert values == {"plain words", "<p>html words</p>"}
    assert [a["name"] for a in got["attachments"]] == ["pic.gif"]
    bad = api.call("Email/set", {"create": {"x": {"mailboxIds": {api.mailbox("drafts"): True}, "bodyStructure": {"type": "text/plain"}}}})
    assert bad["notCreated"]["x"]["type"] == "invalidProperties"
