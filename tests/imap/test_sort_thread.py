"""SORT / ESORT / THREAD (RFC 5256, RFC 5267) over a raw socket and with imapclient's helpers,
and the threading algorithms as pure functions."""

from __future__ import annotations

import re

from imapclient import IMAPClient

from courriel.imap.thread import Msg, ordered_subject, references, render
from tests.harness import CourrielServer
from tests.imap.conftest import PASSWORD, Raw, unique

USER = "dave@example.test"


def _msg(subject: str, date: str, mid: str, refs: str = "", sender: str = "x@example.test", size: int = 0) -> bytes:
    head = f"From: {sender}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{mid}>\r\n"
    if refs:
        head += f"References: {refs}\r\nIn-Reply-To: {refs.split()[-1]}\r\n"
    return (head + "\r\n" + "x" * size + "body\r\n").encode()


MESSAGES = [  # UIDs 1..5
    _msg("Budget", "Tue, 02 Jan 2024 10:00:00 +0000", "a@t", sender="zed@example.test", size=300),
    _msg("Re: Budget", "Wed, 03 Jan 2024 10:00:00 +0000", "b@t", "<a@t>", sender="amy@example.test"),
    _msg("Agenda", "Mon, 01 Jan 2024 10:00:00 +0000", "c@t", sender="bob@example.test", size=100),
    _msg("Re: Budget", "Thu, 04 Jan 2024 10:00:00 +0000", "d@t", "<a@t> <b@t>", sender="amy@example.test"),
    _msg("[fwd: Agenda]", "Fri, 05 Jan 2024 10:00:00 +0000", "e@t", sender="cat@example.test"),
]


def _box(raw: Raw) -> str:
    box = unique("sort")
    raw.ok(f"a CREATE {box}")
    for i, data in enumerate(MESSAGES):
        raw.ok(f"b{i} APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    raw.ok(f"c SELECT {box}")
    return box


def test_sort_and_esort(server: CourrielServer) -> None:
    raw = Raw(server.port("imap"))
    raw.login(USER)
    _box(raw)
    assert raw.ok("a SORT (DATE) UTF-8 ALL")[0] == b"* SORT 3 1 2 4 5\r\n"
    assert raw.ok("b SORT (REVERSE DATE) US-ASCII ALL")[0] == b"* SORT 5 4 2 1 3\r\n"
    # RFC 5256: subject sort on the base subject, ties by message order
    assert raw.ok("c SORT (SUBJECT) UTF-8 ALL")[0] == b"* SORT 3 5 1 2 4\r\n"
    assert raw.ok("d SORT (FROM SIZE) UTF-8 ALL")[0] == b"* SORT 2 4 3 5 1\r\n"
    assert raw.ok("e UID SORT (SIZE) UTF-8 SUBJECT budget")[0] == b"* SORT 2 4 1\r\n"
    assert raw.ok("f SORT (DISPLAYFROM) UTF-8 ALL")[0] == b"* SORT 2 4 3 5 1\r\n"  # RFC 5957
    # ESORT (RFC 5267): MIN/MAX in sort order, ALL keeps the order
    out = raw.ok("g SORT RETURN (MIN MAX COUNT ALL) (REVERSE DATE) UTF-8 ALL")
    assert out[0] == b'* ESEARCH (TAG "g") MIN 5 MAX 3 COUNT 5 ALL 5,4,2,1,3\r\n'
    out = raw.ok("h UID SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT agenda")
    assert len(out) == 1
    assert raw.ok("i UID FETCH $ (UID)")[:2] == [b"* 3 FETCH (UID 3)\r\n", b"* 5 FETCH (UID 5)\r\n"]
    assert raw.cmd("j SORT (DATE) KOI8-R ALL")[-1].startswith(b"j NO [BADCHARSET")
    assert raw.cmd("k SORT (NOPE) UTF-8 ALL")[-1].startswith(b"k BAD ")
    assert raw.cmd("l SORT () UTF-8 ALL")[-1].startswith(b"l BAD ")
    raw.close()


def test_thread(server: CourrielServer) -> None:
    raw = Raw(server.port("imap"))
    raw.login(USER)
    _box(raw)
    assert raw.ok("a THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == b"* THREAD (3 5)(1 (2)(4))\r\n"
    assert raw.ok("b THREAD REFERENCES UTF-8 ALL")[0] == b"* THREAD (3 5)(1 2 4)\r\n"
    assert raw.ok("c UID THREAD REFERENCES UTF-8 NOT SUBJECT agenda")[0] == b"* THREAD (1 2 4)\r\n"
    assert raw.cmd("d THREAD BOGUS UTF-8 ALL")[-1].startswith(b"d BAD ")
    raw.close()


def test_imapclient_sort_thread_and_condstore(server: CourrielServer) -> None:
    raw = Raw(server.port("imap"))
    raw.login(USER)
    box = _box(raw)
    raw.close()
    with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False) as client:
        client.login(USER, PASSWORD)
        assert client.has_capability("SORT") and client.has_capability("CONDSTORE")
        assert client.enable("CONDSTORE") == [b"CONDSTORE"]
        info = client.select_folder(box)
        assert info[b"HIGHESTMODSEQ"] > 0
        assert client.sort(["REVERSE DATE"]) == [5, 4, 2, 1, 3]
        assert client.sort("SUBJECT", ["FROM", "amy"]) == [2, 4]
        threads = client.thread("REFERENCES")
        assert [tuple(t) for t in threads] == [(3, 5), (1, 2, 4)]
        base = max(v[b"MODSEQ"][0] for v in client.fetch([1, 2, 3, 4, 5], ["MODSEQ"]).values())
        client.add_flags([2], [b"\\Flagged"])
        changed = client.fetch([1, 2, 3, 4, 5], ["FLAGS"], modifiers=[f"CHANGEDSINCE {base}"])
        assert list(changed) == [2] and b"\\Flagged" in changed[2][b"FLAGS"]
        assert client.search(["MODSEQ", base + 1]) == [2]
        status = client.folder_status(box, ["HIGHESTMODSEQ"])
        assert status[b"HIGHESTMODSEQ"] > base


def _m(n: int, date: float, subject: str, mid: str | None, refs: tuple[str, ...] = (), reply: bool = False) -> Msg:
    return Msg(n, n, date, subject, reply, mid, refs)


def test_references_algorithm_table() -> None:
    cases = [
        # a broken chain: the missing parent becomes a dummy, promoted at the top level
        ([_m(1, 1, "x", "a"), _m(2, 2, "x", "b", ("a",), True), _m(3, 3, "x", "c", ("missing", "b"), True)],
         b"(1 2 3)"),
        # two replies to a message that is not there: a dummy root with two children
        ([_m(1, 2, "y", "b", ("root",), True), _m(2, 1, "y", "c", ("root",), True)], b"((2)(1))"),
        # a link that would make a loop is not made: the first one (b above a) stays
        ([_m(1, 1, "z", "a", ("b",)), _m(2, 2, "z", "b", ("a",))], b"(2 1)"),
        # duplicate Message-ID: both kept
        ([_m(1, 1, "d", "same"), _m(2, 2, "e", "same")], b"(1)(2)"),
        # same base subject, not linked: gathered under the non-reply
        ([_m(1, 1, "q", "a"), _m(2, 2, "q", "b", reply=True)], b"(1 2)"),
        # same base subject, neither a reply: a dummy holds both
        ([_m(1, 1, "w", "a"), _m(2, 2, "w", "b")], b"((1)(2))"),
        ([], b""),
    ]
    for msgs, expected in cases:
        assert render(references(msgs)) == expected, msgs


def test_ordered_subject_table() -> None:
    msgs = [_m(1, 3, "b", None), _m(2, 1, "a", None), _m(3, 2, "b", None), _m(4, 4, "a", None)]
    assert render(ordered_subject(msgs)) == b"(2 4)(3 1)"
    assert re.fullmatch(rb"(\(\d+\))+", render(ordered_subject([_m(i, i, str(i), None) for i in range(1, 5)])))


def _sort_line(out: list[bytes]) -> bytes:
    return next(line for line in out if line.startswith(b"* SORT") or line.startswith(b"* ESEARCH"))


def test_sort_after_changes_in_each_session_view(server: CourrielServer) -> None:
    """The whole-mailbox orders are cached per mailbox (courriel.imap.sortcache): a message
    appended with a key in the middle and an expunge show at once in the session that made
    them, and in another session only once announced (its own message numbers meanwhile)."""
    port = server.port("imap")
    a, b = Raw(port), Raw(port)
    a.login(USER)
    b.login(USER)
    box = _box(a)
    b.ok(f"s SELECT {box}")
    for raw in (a, b):
        assert raw.ok("a UID SORT (SUBJECT) UTF-8 ALL")[0] == b"* SORT 3 5 1 2 4\r\n"
        assert raw.ok("b SORT (REVERSE SUBJECT) UTF-8 ALL")[0] == b"* SORT 1 2 4 3 5\r\n"
    data = _msg("Re: agenda", "Wed, 03 Jan 2024 10:00:00 +0000", "f@t")  # UID 6, between 5 and 1
    a.ok(f"c APPEND {box} {{{len(data)}+}}\r\n".encode() + data)
    assert a.ok("d UID SORT (SUBJECT) UTF-8 ALL")[0] == b"* SORT 3 5 6 1 2 4\r\n"
    assert a.ok("e SORT (DATE) UTF-8 ALL")[0] == b"* SORT 3 1 2 6 4 5\r\n"
    # b was not told of UID 6 yet: not in its answer (EXISTS comes with or after it)
    out = b.ok("f UID SORT (SUBJECT) UTF-8 ALL")
    assert _sort_line(out) == b"* SORT 3 5 1 2 4\r\n" and b"* 6 EXISTS\r\n" in out
    assert _sort_line(b.ok("g UID SORT (SUBJECT) UTF-8 ALL")) == b"* SORT 3 5 6 1 2 4\r\n"
    a.ok("h STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("i EXPUNGE")
    assert a.ok("j SORT (SUBJECT) UTF-8 ALL")[0] == b"* SORT 2 4 5 1 3\r\n"
    assert a.ok("k UID SORT (REVERSE SUBJECT) UTF-8 ALL")[0] == b"* SORT 2 4 3 5 6\r\n"
    out = a.ok("l SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL")
    assert out[0] == b'* ESEARCH (TAG "l") MIN 2 MAX 3 COUNT 5 ALL 2,4:5,1,3\r\n'
    # b still numbers UID 1 as message 1 until it hears of the expunge (UID 1 is gone)
    out = b.ok("m SORT (SUBJECT) UTF-8 ALL")
    assert _sort_line(out) == b"* SORT 3 5 6 2 4\r\n"
    b.ok("n NOOP")
    assert _sort_line(b.ok("o SORT (SUBJECT) UTF-8 ALL")) == b"* SORT 2 4 5 1 3\r\n"
    a.close()
    b.close()
