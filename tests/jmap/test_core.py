"""Pure parts of JMAP: the request validator (raw bytes in, typed request or error out),
JSON Pointer result references, header forms, EventSource parameters, /changes arithmetic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from courriel.jmap import headers as h
from courriel.jmap.core import (
    CORE,
    MAIL,
    MethodError,
    RequestError,
    evaluate_pointer,
    parse_request,
    resolve_references,
)
from courriel.jmap.push import changed_types, parse_params, state_event
from courriel.jmap.sync import Life, compute
from courriel.store.changes import MailboxCreated, MessageAdded

LIMITS: dict[str, Any] = {"max_size": 1000, "max_calls": 3}


@pytest.mark.parametrize(
    ("raw", "kind", "limit"),
    [
        (b"", "notJSON", None),
        (b"{", "notJSON", None),
        (b"\xff\xfe{}", "notJSON", None),
        (b'{"using": [], "methodCalls": [], "x": NaN}', "notJSON", None),
        (b"[]", "notRequest", None),
        (b'{"methodCalls": []}', "notRequest", None),
        (b'{"using": "x", "methodCalls": []}', "notRequest", None),
        (b'{"using": [], "methodCalls": {}}', "notRequest", None),
        (b'{"using": [], "methodCalls": [["a", {}]]}', "notRequest", None),
        (b'{"using": [], "methodCalls": [["a", [], "c"]]}', "notRequest", None),
        (b'{"using": [], "methodCalls": [[1, {}, "c"]]}', "notRequest", None),
        (b'{"using": [], "methodCalls": [], "createdIds": []}', "notRequest", None),
        (b'{"using": ["urn:x"], "methodCalls": []}', "unknownCapability", None),
        # Found by fuzz/targets/jmap.py: lone surrogates (not I-JSON) made the problem
        # document or the echoed call id unrenderable (500).
        (b'{"using": ["\\ud800"], "methodCalls": []}', "notJSON", None),
        (b'{"using": [], "methodCalls": [["a", {}, "\\udc00"]]}', "notJSON", None),
        (b'{"using": [], "methodCalls": [["a",{},"1"],["a",{},"2"],["a",{},"3"],["a",{},"4"]]}', "limit", "maxCallsInRequest"),
        (b'{"using": [], "methodCalls": [], "pad": "' + b"x" * 1000 + b'"}', "limit", "maxSizeRequest"),
    ],
)
def test_request_errors(raw: bytes, kind: str, limit: str | None) -> None:
    with pytest.raises(RequestError) as err:
        parse_request(raw, **LIMITS)
    assert err.value.kind == kind
    assert err.value.limit == limit
    body = err.value.body()
    assert body["type"] == f"urn:ietf:params:jmap:error:{kind}" and body["status"] == 400


def test_deep_nesting_is_not_json() -> None:
    with pytest.raises(RequestError) as err:
        parse_request(b"[" * 100_000 + b"]" * 100_000, max_size=10**6, max_calls=3)
    assert err.value.kind == "notJSON"


def test_surrogate_pair_escape_is_accepted() -> None:
    req = parse_request(b'{"using": [], "methodCalls": [["Core/echo", {"x": "\\ud83d\\ude00"}, "c"]]}', **LIMITS)
    assert req.calls[0].arguments == {"x": "\U0001f600"}


def test_request_ok() -> None:
    raw = (
        b'{"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],'
        b' "methodCalls": [["Mailbox/get", {"accountId": "A1"}, "c1"], ["Core/echo", {}, "c2"]],'
        b' "createdIds": {"k": "M1"}}'
    )
    req = parse_request(raw, **LIMITS)
    assert req.using == (CORE, MAIL)
    assert [(c.name, c.call_id) for c in req.calls] == [("Mailbox/get", "c1"), ("Core/echo", "c2")]
    assert req.calls[0].arguments == {"accountId": "A1"}
    assert req.created_ids == {"k": "M1"}


DOC = {"list": [{"id": "a", "threadId": "t1", "emailIds": ["x", "y"]}, {"id": "b", "threadId": "t2", "emailIds": ["z"]}],
       "ids": ["a", "b"], "a/b": 1, "m~n": 2}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("", DOC),
        ("/ids", ["a", "b"]),
        ("/ids/1", "b"),
        ("/list/0/threadId", "t1"),
        ("/list/*/threadId", ["t1", "t2"]),
        ("/list/*/emailIds", ["x", "y", "z"]),  # RFC 8620 §3.7: arrays are flattened
        ("/a~1b", 1),
        ("/m~0n", 2),
    ],
)
def test_pointer(path: str, value: object) -> None:
    assert evaluate_pointer(DOC, path) == value


@pytest.mark.parametrize("path", ["/nope", "/ids/2", "/ids/01", "/ids/-", "ids", "/list/*/nope", "/ids/0/x"])
def test_pointer_misses(path: str) -> None:
    with pytest.raises(KeyError):
        evaluate_pointer(DOC, path)


def test_result_references() -> None:
    responses = [("Email/query", {"ids": ["M1", "M2"]}, "0")]
    ref = {"resultOf": "0", "name": "Email/query", "path": "/ids"}
    assert resolve_references({"#ids": ref, "x": 1}, responses) == {"ids": ["M1", "M2"], "x": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"#ids": {**ref, "name": "Email/get"}}, "invalidResultReference"),
        ({"#ids": {**ref, "resultOf": "9"}}, "invalidResultReference"),
        ({"#ids": {**ref, "path": "/nope"}}, "invalidResultReference"),
        ({"#ids": ref, "ids": []}, "invalidArguments"),
        ({"#ids": "x"}, "invalidArguments"),
    ]
    for args, kind in cases:
        with pytest.raises(MethodError) as err:
            resolve_references(args, responses)
        assert err.value.kind == kind


@pytest.mark.parametrize(
    ("prop", "parsed"),
    [
        ("header:Subject", ("Subject", "Raw", False)),
        ("header:subject:asText", ("subject", "Text", False)),
        ("header:From:asAddresses:all", ("From", "Addresses", True)),
        ("header:To:asGroupedAddresses", ("To", "GroupedAddresses", False)),
        ("header:X-Foo:asDate", ("X-Foo", "Date", False)),
        ("header:List-Post:asURLs", ("List-Post", "URLs", False)),
        ("header:Subject:asAddresses", None),  # §4.1.2: not an address field
        ("header:From:asText", None),
        ("header:Date:asMessageIds", None),
        ("header:X:asNothing", None),
        ("header::asText", None),
        ("header:A B", None),
        ("header:A:asText:all:more", None),
    ],
)
def test_header_property(prop: str, parsed: tuple[str, str, bool] | None) -> None:
    hp = h.parse_property(prop)
    assert (None if hp is None else (hp.name, hp.form, hp.all)) == parsed


def test_header_forms() -> None:
    assert h.parse_form(" =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n  world ", "Text") == "Grüße  world"
    assert h.parse_form(' "Joe Q." <joe@example.org>, bob@example.org', "Addresses") == [
        {"name": "Joe Q.", "email": "joe@example.org"},
        {"name": None, "email": "bob@example.org"},
    ]
    assert h.parse_form(" team: a@x.test, b@x.test;, c@y.test", "GroupedAddresses") == [
        {"name": "team", "addresses": [{"name": None, "email": "a@x.test"}, {"name": None, "email": "b@x.test"}]},
        {"name": None, "addresses": [{"name": None, "email": "c@y.test"}]},
    ]
    assert h.parse_form(" <a@b> <c@d>", "MessageIds") == ["a@b", "c@d"]
    assert h.parse_form(" nothing", "MessageIds") is None
    assert h.parse_form(" Tue, 1 Jul 2003 10:52:37 +0200", "Date") == "2003-07-01T10:52:37+02:00"
    assert h.parse_form(" <mailto:l@x.test>, <https://x.test/u>", "URLs") == ["mailto:l@x.test", "https://x.test/u"]
    fields = [("Subject", " one"), ("X-A", " 1"), ("subject", " two")]
    assert h.header_value(fields, h.HeaderProperty("Subject", "Text", False)) == "two"  # the last
    assert h.header_value(fields, h.HeaderProperty("SUBJECT", "Raw", True)) == [" one", " two"]


@pytest.mark.parametrize(
    ("raw", "form", "expected"),
    [
        # Found by fuzz/targets/jmap.py: 8-bit octets in a raw header value (read with
        # surrogateescape) came out as lone surrogates, which no JSON response can carry.
        ("<a\udc9d;;;ng\":>", "URLs", ["a\u009d;;;ng\":"]),
        (" <caf\udcc3\udca9@x>", "MessageIds", ["café@x"]),
        (" <caf\udce9@x>", "URLs", ["café@x"]),
    ],
)
def test_header_forms_with_8bit_octets(raw: str, form: str, expected: list[str]) -> None:
    got = h.parse_form(raw, form)
    assert got == expected
    json.dumps(got, ensure_ascii=False).encode("utf-8")


def test_push_params() -> None:
    p = parse_params("Email,Mailbox", "state", "1")
    assert p.types == {"Email", "Mailbox"} and p.close_after_state and p.ping == 5  # raised to the minimum
    assert parse_params(None, None, None).types == {"*"}
    for bad in [("Nope", "no", "0"), ("*", "maybe", "0"), ("*", "no", "x"), ("*", "no", "-1")]:
        with pytest.raises(ValueError):
            parse_params(*bad)
    changed = changed_types([MessageAdded(1, 7, 3, 1, 0, frozenset(), 10), MailboxCreated(1, 9, 4, "X")])
    assert changed == {"Mailbox": 9, "Email": 7, "Thread": 7, "EmailDelivery": 7}
    event = state_event("A1", changed, frozenset({"Email"}))
    assert event == b'event: state\ndata: {"@type":"StateChange","changed":{"A1":{"Email":"7"}}}\n\n'
    assert state_event("A1", {"Mailbox": 9}, frozenset({"Email"})) is None


def test_changes_arithmetic() -> None:
    objects = {
        "old-flagged": [Life(2, 12)],  # existed at 10, changed after: updated
        "new": [Life(11, 11)],  # created after 10
        "moved": [Life(3, 13, removed=True), Life(13, 13)],  # a copy replaced another: updated
        "gone": [Life(4, 14, removed=True)],  # destroyed
        "flash": [Life(11, 15, removed=True)],  # created and destroyed since: not reported
    }
    ch = compute(objects, 10, 15, None)
    assert (sorted(ch.created), sorted(ch.updated), sorted(ch.destroyed)) == (["new"], ["moved", "old-flagged"], ["gone"])
    assert ch.new_state == 15 and not ch.has_more
    part = compute(objects, 10, 15, 2)  # at most two: cut at MODSEQ 11, where two moved
    assert part.has_more and part.new_state == 11
    assert sorted(part.created) == ["flash", "new"] and not part.updated and not part.destroyed
    rest = compute(objects, 11, 15, None)  # the client goes on from there
    assert sorted(rest.updated) == ["moved", "old-flagged"] and sorted(rest.destroyed) == ["flash", "gone"]
    with pytest.raises(MethodError):
        compute({"a": [Life(11, 11)], "b": [Life(11, 11)]}, 10, 11, 1)  # two changes in one MODSEQ
