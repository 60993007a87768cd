"""parse_message never raises: random bytes and mutated corpus messages.

Besides not raising, every result must keep the model's invariants (offsets inside the
data, sizes equal to slices, multiparts with children) and survive the JSON codec.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.mime import (
    BodyPart,
    ParsedMessage,
    body_from_json,
    body_to_json,
    decode_header_value,
    envelope_from_json,
    envelope_to_json,
    parse_addresses,
    parse_date,
    parse_message,
    part_text,
)
from courriel.mime.content import decode_part

from .corpus import CORPUS

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_invariants(data: bytes, msg: ParsedMessage) -> None:
    # The catch-all in parse_message must never be what saved us: that is a bug.
    assert not [d for d in msg.defects if d.startswith(("parser error", "decoding error"))]
    assert msg.size == len(data)
    stack: list[BodyPart] = [msg.body]
    while stack:
        part = stack.pop()
        assert 0 <= part.header_start <= part.body_start <= part.end <= len(data)
        assert part.end - part.body_start == part.size
        if part.type_lower == "multipart":
            assert part.children
        decode_part(data, part)
        if part.type_lower == "text":
            part_text(data, part)
        stack.extend(part.children)
        if part.message is not None:
            stack.append(part.message)
    assert envelope_from_json(envelope_to_json(msg.envelope)) == msg.envelope
    assert body_from_json(body_to_json(msg.body)) == msg.body
    assert len(msg.preview) <= 256


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    check_invariants(data, parse_message(data))


# Fragments that make random data look like MIME.
FRAGMENTS = [
    b"\r\n", b"\n", b"\r", b"--", b"--b", b"--b--", b"\r\n--outer\r\n", b"\r\n--alt--",
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"=?utf-8?q?=C3?=", b"=?x?b?####?=", b"\x00", b"\xff\xfe", b"\t", b" ", b":", b";",
    b"name*0*=utf-8''%", b"\"", b"(", b"<", b">", b"@", b",", b"\r\n\r\n", b"=\r\n", b"=4",
]  # fmt: skip

mutation = st.tuples(
    st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate"]),
    st.floats(0, 1),
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(min_size=1, max_size=8)),
    st.integers(1, 40),
)


def mutate(data: bytes, ops: list[tuple[str, float, bytes, int]]) -> bytes:
    for op, where, chunk, length in ops:
        pos = int(where * len(data))
        if op == "insert":
            data = data[:pos] + chunk + data[pos:]
        elif op == "delete":
            data = data[:pos] + data[pos + length :]
        elif op == "replace":
            data = data[:pos] + chunk + data[pos + len(chunk) :]
        elif op == "truncate":
            data = data[:pos]
        else:
            data = data[:pos] + data[pos : pos + length] * 3 + data[pos + length :]
    return data


@FUZZ
@given(st.sampled_from(sorted(CORPUS)), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_corpus(name: str, ops: list[tuple[str, float, bytes, int]]) -> None:
    data = mutate(CORPUS[name], ops)
    check_invariants(data, parse_message(data))


@FUZZ
@given(st.text(max_size=300))
def test_header_helpers_never_raise(raw: str) -> None:
    decode_header_value(raw)
    parse_addresses(raw)
    parse_date(raw)
    surrogates = raw.encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape")
    decode_header_value(surrogates)
    parse_addresses(surrogates)


def test_pathological_inputs_stay_fast() -> None:
    """Inputs built to trigger quadratic scans finish quickly."""
    cases = [
        b"Subject: " + b"(fwd)" * 20000 + b"x\r\n\r\n",
        b"Content-Type: text/html\r\n\r\n" + b"<" * 200000,
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a-" * 100000,
        b"To: " + b"(" * 50000 + b"\r\n\r\n",
        b"Subject: " + b"=?utf-8?q?" * 20000 + b"\r\n\r\n",
        b"Content-Type: text/plain; " + b"a*0=b; " * 5000 + b"\r\n\r\n",
    ]
    for data in cases:
        msg = parse_message(data)
        check_invariants(data, msg)


def test_internal_error_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    import courriel.mime.parse as parse_module

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(parse_module, "scan_header", broken)
    data = b"Subject: x\r\n\r\nbody"
    msg = parse_message(data)
    assert msg.defects == ["parser error: RuntimeError('boom')"]
    assert (msg.body.body_start, msg.body.end, msg.body.size) == (0, len(data), len(data))
