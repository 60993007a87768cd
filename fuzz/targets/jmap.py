"""The pure JMAP request layer (courriel.jmap.core, courriel.jmap.headers): the API request
envelope (RFC 8620 §3.3), result references (§3.7, RFC 6901 pointers) and header:
properties (RFC 8621 §4.1.2).

Input: the request body; its text is also used as a JSON pointer into the parsed request
and into a fixed response, and as a header property name.

Invariants: parse_request raises only RequestError, whose problem document renders as the
HTTP layer sends it (Starlette JSONResponse: UTF-8, no lone surrogates); an accepted request
holds only I-JSON (it renders the same way, as the responses echoing its call ids will),
respects the limits, and survives serialise -> parse unchanged; pointers raise only
KeyError; result references only MethodError; a header property that parses has an allowed
form and every form reads any raw value into renderable JSON.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from courriel.jmap.core import (
    CAPABILITIES,
    MethodError,
    RequestError,
    evaluate_pointer,
    parse_request,
    resolve_references,
)
from courriel.jmap.headers import FORMS, form_allowed, parse_form, parse_property
from fuzz.common import check

MAX_SIZE = 8192
MAX_CALLS = 8
DOC: dict[str, Any] = {
    "list": [{"id": "a", "emailIds": ["x", "y"]}, {"id": "b", "emailIds": []}],
    "ids": ["a"],
    "a/b": 1,
}
TOKENS = [
    b'{"using":', b'"methodCalls":', b'"createdIds":', b"urn:ietf:params:jmap:core", b"urn:ietf:params:jmap:mail",
    b"urn:ietf:params:jmap:submission", b'["Core/echo",', b'["Email/get",', b'"#ids":', b'"resultOf":', b'"name":',
    b'"path":', b'"/list/*/id"', b"~0", b"~1", b"\\u0000", b"\\ud800", b"\\udc00", b"\\ud83d\\ude00", b"\\\"",
    b"NaN", b"Infinity", b"1e999", b"-0", b"[", b"]", b"{", b"}", b",", b":", b"null", b"true", b"header:",
    b":asText", b":asAddresses", b":asGroupedAddresses", b":asMessageIds", b":asDate", b":asURLs", b":asRaw", b":all",
]  # fmt: skip


def seeds() -> list[bytes]:
    return [
        b'{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["Core/echo", {"a": 1}, "c1"]]}',
        b'{"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"], "methodCalls": [["Email/query",'
        b' {"accountId": "A1", "filter": {"text": "x"}}, "0"], ["Email/get", {"#ids": {"resultOf": "0",'
        b' "name": "Email/query", "path": "/ids"}}, "1"]], "createdIds": {"k": "M1"}}',
        b'{"using": [], "methodCalls": [], "createdIds": {}}',
        b'{"using": ["urn:x"], "methodCalls": []}',
        b'{"using": [], "methodCalls": [["a", {}, "1"], ["a", {}, "2"]]}',
        b"/list/*/emailIds",
        b"/a~1b",
        b"header:From:asAddresses:all",
        b"header:Subject:asText",
        b"header:List-Post:asURLs",
    ]


def _renders(body: object, what: str) -> None:
    try:
        JSONResponse(body)
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError) as exc:
        raise AssertionError(f"{what} cannot be sent: {exc!r}") from None


def _check_request(data: bytes) -> Any:
    try:
        req = parse_request(data, max_size=MAX_SIZE, max_calls=MAX_CALLS)
    except RequestError as exc:
        _renders(exc.body(), "the problem document")
        check(400 <= exc.status < 600, "a request error that is not 4xx/5xx")
        return None
    check(len(data) <= MAX_SIZE and len(req.calls) <= MAX_CALLS, "limits not applied")
    check(set(req.using) <= CAPABILITIES, "unknown capability accepted")
    doc: dict[str, Any] = {
        "using": list(req.using),
        "methodCalls": [[c.name, c.arguments, c.call_id] for c in req.calls],
    }
    if req.created_ids is not None:
        doc["createdIds"] = req.created_ids
    _renders(doc, "an accepted request")
    again = parse_request(bytes(JSONResponse(doc).body), max_size=1 << 30, max_calls=MAX_CALLS)
    check(again == req, "request does not survive serialise -> parse")
    return doc


def test_one(data: bytes) -> None:
    doc = _check_request(data)
    text = data.decode("utf-8", "replace")
    for target in (DOC, doc):
        try:
            evaluate_pointer(target, text)
        except KeyError:
            pass
    if doc is not None:
        for call in doc["methodCalls"]:
            try:
                resolve_references(call[1], [("Email/query", DOC, "0"), ("Core/echo", doc, "1")])
            except MethodError as exc:
                _renders(exc.body(), "a method error")
    prop = parse_property(text)
    if prop is not None:
        check(
            prop.form in FORMS and form_allowed(prop.name.lower(), prop.form),
            "a disallowed form parsed",
        )
    raw = data.decode("utf-8", "surrogateescape")
    for form in FORMS:
        _renders({"v": parse_form(raw, form)}, f"header as{form}")
