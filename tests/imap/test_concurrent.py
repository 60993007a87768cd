"""Two sessions on one mailbox see each other's APPEND, STORE, EXPUNGE and MOVE through the
change feed, as RFC 9051 §7 allows: during IDLE at once, otherwise at the end of a command,
and never an EXPUNGE while answering FETCH, STORE or SEARCH by sequence number (§7.5.1)."""

from __future__ import annotations

import re

from tests.harness import CourrielServer
from tests.imap.conftest import Raw, imap, message, unique

USER = "erin@example.test"


def _setup(server: CourrielServer, n: int) -> tuple[str, Raw, Raw]:
    client = imap(server, USER)
    box = unique("conc")
    client.create(box)
    for i in range(n):
        client.append(box, None, None, message(f"c{i}"))
    client.logout()
    a, b = Raw(server.port("imap")), Raw(server.port("imap"))
    for r in (a, b):
        r.login(USER)
        r.ok(f"s SELECT {box}")
    return box, a, b


def _until(raw: Raw, stop: bytes) -> list[bytes]:
    lines = []
    while True:
        line = raw.line()
        assert line, lines
        lines.append(line)
        if line.startswith(stop):
            return lines


def test_idle_sees_append_store_expunge_move(server: CourrielServer) -> None:
    box, a, b = _setup(server, 3)
    dest = unique("dest")
    b.ok(f"d CREATE {dest}")
    a.send(b"i IDLE\r\n")
    assert a.line() == b"+ idling\r\n"
    data = message("new one")
    b.ok(f"x APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    assert a.line() == b"* 4 EXISTS\r\n"
    # a selected first: it claimed \Recent for the first three; the new one is also its own.
    assert a.line() == b"* 4 RECENT\r\n"
    b.ok("y STORE 2 +FLAGS.SILENT (\\Flagged)")
    assert _until(a, b"* 2 FETCH")[-1] == b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n"
    b.ok("z STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("w EXPUNGE")
    lines = _until(a, b"* 1 EXPUNGE")
    assert lines[-1] == b"* 1 EXPUNGE\r\n"
    b.ok(f"v MOVE 1 {dest}")  # b's message 1 is UID 2, a's message 1 now too
    assert _until(a, b"* 1 EXPUNGE")[-1] == b"* 1 EXPUNGE\r\n"
    a.send(b"DONE\r\n")
    assert a.read_response(b"i")[-1] == b"i OK IDLE terminated\r\n"
    out = a.ok("f FETCH 1:* (UID)")
    assert out[:-1] == [b"* 1 FETCH (UID 3)\r\n", b"* 2 FETCH (UID 4)\r\n"]
    a.close()
    b.close()


def test_noop_reports_others_changes(server: CourrielServer) -> None:
    box, a, b = _setup(server, 2)
    b.ok("x STORE 1 +FLAGS (\\Seen)")
    data = message("another")
    b.ok(f"y APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    out = a.ok("n NOOP")
    assert b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n" in out or b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n" in out
    assert b"* 3 EXISTS\r\n" in out
    a.close()
    b.close()


def test_no_expunge_during_fetch_store_search(server: CourrielServer) -> None:
    _box, a, b = _setup(server, 3)
    b.ok("x STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("y EXPUNGE")
    # a still numbers the expunged message 2: FETCH, STORE and SEARCH keep it quiet.
    out = a.ok("f FETCH 1:3 (UID)")
    assert not any(b"EXPUNGE" in line for line in out)
    assert b"* 3 FETCH (UID 3)\r\n" in out  # number 3 still means UID 3 in this session
    out = a.ok("s STORE 3 +FLAGS (\\Answered)")
    assert not any(b"EXPUNGE" in line for line in out)
    assert b"* 3 FETCH (FLAGS (\\Answered \\Recent))\r\n" in out or b"* 3 FETCH (FLAGS (\\Answered))\r\n" in out
    out = a.ok("t SEARCH ALL")
    assert out[-2] == b"* SEARCH 1 3\r\n" and not any(b"EXPUNGE" in line for line in out)
    # UID FETCH may carry it (§7.5.1); afterwards message 3 is number 2.
    out = a.ok("u UID FETCH 3 (UID)")
    assert b"* 2 EXPUNGE\r\n" in out
    assert a.ok("v FETCH 2 (UID)")[0] == b"* 2 FETCH (UID 3)\r\n"
    a.close()
    b.close()


def test_examine_session_sees_flags_but_claims_no_recent(server: CourrielServer) -> None:
    box, a, b = _setup(server, 1)
    reader = Raw(server.port("imap"))
    reader.login(USER)
    reader.ok(f"e EXAMINE {box}")
    b.ok("x STORE 1 FLAGS (\\Draft)")
    out = reader.ok("n NOOP")
    assert any(re.fullmatch(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Draft( \\Recent)?\)\)\r\n", line) for line in out)
    for r in (a, b, reader):
        r.close()
