"""The pure POP3 layer (courriel.pop3.protocol): the command parser, and the multi-line
responses (dot-stuffing, TOP) built from arbitrary message bytes.

Input layout: byte 0 picks a TOP line count; the rest is a command line, and also a message.

Invariants: only ParseError is raised; a parsed command is in the RFC 1939 table with its
argument count and numbers (>= 1 for message numbers); a response ends at its last line
for a client splitting on CRLF and for one splitting on bare LF (RFC 1939 §3); a CRLF-only
message comes back byte for byte after unstuffing; TOP returns a prefix of the message,
growing with the line count, the whole message when asked for every line.
"""

from __future__ import annotations

from courriel.pop3 import protocol as p
from fuzz.common import check, constants

TOKENS = [b"USER ", b"PASS ", b"APOP ", b"AUTH ", b"CAPA", b"STLS", b"QUIT", b"STAT", b"LIST ", b"RETR ",
          b"DELE ", b"NOOP", b"RSET", b"TOP ", b"UIDL ", b"\r\n", b"\n", b"\r", b".", b"\r\n.\r\n", b"\n.\n",
          b"0", b"4294967296", b"99999999999", b"PLAIN", b"SCRAM-SHA-256"]  # fmt: skip


def seeds() -> list[bytes]:
    return [b"\x05" + s for s in constants("tests/pop3/test_protocol.py", bytes)]


def _check_command(line: bytes) -> None:
    try:
        cmd = p.parse_command(line)
    except p.ParseError:
        return
    spec = p.SYNTAX.get(cmd.name)
    check(spec is not None, f"unknown command {cmd.name} accepted")
    assert spec is not None
    if spec != ("rest",):
        check(
            sum(1 for k in spec if not k.endswith("?")) <= len(cmd.args) <= len(spec),
            "argument count",
        )
        kinds = [(w, k.rstrip("?")) for w, k in zip(cmd.args, spec)]
        numeric = [(int(w), k) for w, k in kinds if k in ("msg", "n")]
        check(tuple(n for n, _ in numeric) == cmd.numbers, "numbers differ from their words")
        check(all(n >= 1 for n, k in numeric if k == "msg"), "message number 0 accepted")
    check(not any(c in a for a in cmd.args for c in "\r\n\x00"), "control character in an argument")


def _response_lines_crlf(resp: bytes) -> list[bytes]:
    """What a client splitting on CRLF reads: lines after the status, up to ".", unstuffed."""
    lines = resp.split(b"\r\n")
    end = lines.index(b".", 1)
    check(
        b"\r\n".join(lines[: end + 1]) + b"\r\n" == resp,
        "a CRLF client sees the end before the last line",
    )
    return [line[1:] if line.startswith(b".") else line for line in lines[1:end]]


def _check_lf_client(resp: bytes) -> None:
    lines = resp.split(b"\n")
    ends = [i for i, line in enumerate(lines) if line in (b".", b".\r")]
    check(
        ends and ends[0] == len(lines) - 2 and lines[-1] == b"", "an LF client sees the end early"
    )


def _check_message(data: bytes, lines: int) -> None:
    wire = p.wire_form(data)
    check(
        wire.startswith(data) and (not wire or wire.endswith(b"\r\n")),
        "wire_form changed the message",
    )
    resp = p.message_response("message follows", wire)
    body = _response_lines_crlf(resp)
    _check_lf_client(resp)
    if b"\n" not in wire.replace(b"\r\n", b""):
        check(
            b"".join(line + b"\r\n" for line in body) == wire, "RETR does not give the message back"
        )
    first = p.top(wire, lines)
    more = p.top(wire, lines + 1)
    check(wire.startswith(first) and more.startswith(first), "TOP is not a growing prefix")
    check(p.top(wire, len(wire) + 1) == wire, "TOP with every line is not the whole message")
    _check_lf_client(b"".join((p.ok("top"), p.dot_stuff(first if first.endswith(b"\r\n") or not first else first + b"\r\n"),
                               p.TERMINATOR)))  # fmt: skip


def test_one(data: bytes) -> None:
    if not data:
        return
    lines = data[0] % 8
    rest = data[1:]
    _check_command(rest)
    _check_message(rest, lines)
    text = rest.decode("utf-8", "replace")
    multi = p.multiline("list", text.split("\n"))
    _check_lf_client(multi)
