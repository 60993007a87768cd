"""CONDSTORE and QRESYNC (RFC 7162): transcripts modelled on the RFC's examples, and a
QRESYNC resynchronisation after another session's expunges and flag changes."""

from __future__ import annotations

import re

from tests.harness import CourrielServer
from tests.imap.conftest import Raw, message, unique

USER = "carol@example.test"


def _session(server: CourrielServer) -> Raw:
    raw = Raw(server.port("imap"))
    raw.login(USER)
    return raw


def _fill(raw: Raw, box: str, n: int) -> None:
    raw.ok(f"f0 CREATE {box}")
    for i in range(n):
        data = message(f"msg {i}")
        raw.ok(f"f{i + 1} APPEND {box} {{{len(data)}+}}\r\n".encode() + data)


def _modseq(line: bytes) -> int:
    m = re.search(rb"MODSEQ \((\d+)\)", line)
    assert m, line
    return int(m.group(1))


def test_select_condstore_and_fetch_modseq(server: CourrielServer) -> None:
    raw = _session(server)
    box = unique("cs")
    _fill(raw, box, 3)
    out = raw.ok(f"a SELECT {box} (CONDSTORE)")
    highest = [ln for ln in out if b"HIGHESTMODSEQ" in ln]
    assert len(highest) == 1 and re.fullmatch(rb"\* OK \[HIGHESTMODSEQ \d+\] .*\r\n", highest[0])
    top = int(re.search(rb"HIGHESTMODSEQ (\d+)", highest[0]).group(1))  # type: ignore[union-attr]
    out = raw.ok("b FETCH 1:* (FLAGS MODSEQ)")
    mods = [_modseq(ln) for ln in out[:-1]]
    assert len(mods) == 3 and mods == sorted(mods) and max(mods) == top
    # STATUS HIGHESTMODSEQ agrees (RFC 7162 §3.1.8)
    raw.ok("c UNSELECT")
    out = raw.ok(f"d STATUS {box} (HIGHESTMODSEQ MESSAGES)")
    assert out[0] == f"* STATUS \"{box}\" (HIGHESTMODSEQ {top} MESSAGES 3)\r\n".encode()
    raw.close()


def test_store_unchangedsince_reports_modified(server: CourrielServer) -> None:
    # RFC 7162 §3.1.3, example 7: a conditional STORE fails for a message changed since.
    raw = _session(server)
    box = unique("cs")
    _fill(raw, box, 3)
    raw.ok(f"a SELECT {box}")
    out = raw.ok("b FETCH 1:3 (MODSEQ)")  # a CONDSTORE-enabling command while selected
    assert out[0].startswith(b"* OK [HIGHESTMODSEQ ")
    base = max(_modseq(ln) for ln in out if b" FETCH (" in ln)
    other = _session(server)
    other.ok(f"x SELECT {box}")
    other.ok("y STORE 2 +FLAGS.SILENT (\\Flagged)")
    other.close()
    out = raw.cmd(f"c STORE 1:3 (UNCHANGEDSINCE {base}) +FLAGS (\\Seen)")
    assert re.fullmatch(rb"c OK \[MODIFIED 2\] Conditional STORE failed\r\n", out[-1]), out
    fetches = [ln for ln in out if b" FETCH " in ln and b"\\Seen" in ln]
    assert {ln.split()[1] for ln in fetches} == {b"1", b"3"}
    assert all(_modseq(ln) > base for ln in fetches)
    # UID form: MODIFIED lists UIDs; .SILENT still returns the new MODSEQ (§3.1.3)
    out = raw.cmd(f"d UID STORE 1:3 (UNCHANGEDSINCE {base}) +FLAGS.SILENT (\\Answered)")
    assert out[-1] == b"d OK [MODIFIED 1:3] Conditional UID STORE failed\r\n", out
    out = raw.cmd("e UID STORE 2 (UNCHANGEDSINCE 0) +FLAGS (\\Answered)")
    assert out[-1] == b"e OK [MODIFIED 2] Conditional UID STORE failed\r\n"
    high = max(_modseq(ln) for ln in raw.ok("f FETCH 1:3 (MODSEQ)") if b" FETCH (" in ln)
    out = raw.ok(f"g STORE 1 (UNCHANGEDSINCE {high}) +FLAGS.SILENT (\\Draft)")
    assert len(out) == 2 and re.fullmatch(rb"\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)\r\n", out[0])
    raw.close()


def test_fetch_changedsince_and_search_modseq(server: CourrielServer) -> None:
    raw = _session(server)
    box = unique("cs")
    _fill(raw, box, 4)
    raw.ok(f"a SELECT {box} (CONDSTORE)")
    base = max(_modseq(ln) for ln in raw.ok("b FETCH 1:* (MODSEQ)") if b" FETCH (" in ln)
    raw.ok("c STORE 2,4 +FLAGS.SILENT (\\Flagged)")
    out = raw.ok(f"d FETCH 1:* (FLAGS) (CHANGEDSINCE {base})")
    assert [ln.split()[1] for ln in out[:-1]] == [b"2", b"4"]
    assert all(b"MODSEQ (" in ln for ln in out[:-1])  # implied by CHANGEDSINCE (§3.1.4.1)
    out = raw.ok(f"e SEARCH MODSEQ {base + 1}")
    m = re.fullmatch(rb"\* SEARCH 2 4 \(MODSEQ (\d+)\)\r\n", out[0])
    assert m and int(m.group(1)) > base
    out = raw.ok(f'f UID SEARCH RETURN (COUNT) MODSEQ "/flags/\\\\flagged" all {base + 1}')
    assert re.fullmatch(rb'\* ESEARCH \(TAG "f"\) UID COUNT 2 MODSEQ \d+\r\n', out[0]), out
    # nothing matched: no MODSEQ part (RFC 7162 §3.1.5)
    assert raw.ok(f"g SEARCH MODSEQ {10**15}")[0] == b"* SEARCH\r\n"
    raw.close()


def test_unsolicited_fetch_carries_modseq(server: CourrielServer) -> None:
    raw = _session(server)
    box = unique("cs")
    _fill(raw, box, 2)
    raw.ok("a ENABLE CONDSTORE")
    raw.ok(f"b SELECT {box}")
    other = _session(server)
    other.ok(f"x SELECT {box}")
    other.ok("y STORE 1 +FLAGS.SILENT (\\Seen)")
    other.close()
    out = raw.ok("c NOOP")
    assert re.fullmatch(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)\r\n", out[0]), out
    raw.close()


def test_qresync_select_after_expunges_elsewhere(server: CourrielServer) -> None:
    """RFC 7162 §3.2.5: a client that remembers (UIDVALIDITY, MODSEQ) learns exactly which
    UIDs vanished and which flags changed while it was away."""
    raw = _session(server)
    box = unique("qr")
    _fill(raw, box, 6)
    out = raw.ok("a ENABLE QRESYNC")
    assert out[0] == b"* ENABLED QRESYNC\r\n"
    out = raw.ok(f"b SELECT {box}")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(out)).group(1))  # type: ignore[union-attr]
    base = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(out)).group(1))  # type: ignore[union-attr]
    raw.ok("c LOGOUT")
    raw.close()
    # Another client expunges 2 and 5 and flags 3 meanwhile.
    other = _session(server)
    other.ok(f"x SELECT {box}")
    other.ok("y UID STORE 2,5 +FLAGS.SILENT (\\Deleted)")
    other.ok("z UID EXPUNGE 2,5")
    other.ok("w UID STORE 3 +FLAGS.SILENT ($Done)")
    other.close()
    raw = _session(server)
    raw.ok("a ENABLE QRESYNC")
    out = raw.ok(f"b SELECT {box} (QRESYNC ({uidvalidity} {base} 1:6))")
    assert b"* VANISHED (EARLIER) 2,5\r\n" in out, out
    fetches = [ln for ln in out if b" FETCH " in ln]
    assert len(fetches) == 1 and re.fullmatch(rb"\* 2 FETCH \(UID 3 FLAGS \(\$Done\) MODSEQ \(\d+\)\)\r\n",
                                               fetches[0]), fetches  # fmt: skip
    assert out.index(b"* VANISHED (EARLIER) 2,5\r\n") < out.index(fetches[0])
    assert b"* 4 EXISTS\r\n" in out
    # known UIDs limit the VANISHED list; a wrong UIDVALIDITY gives a plain SELECT
    raw.ok("c UNSELECT")
    out = raw.ok(f"d SELECT {box} (QRESYNC ({uidvalidity} {base} 3:4))")
    assert not any(b"VANISHED" in ln for ln in out)
    out = raw.ok(f"e SELECT {box} (QRESYNC ({uidvalidity + 1} {base}))")
    assert not any(b"VANISHED" in ln or b" FETCH " in ln for ln in out)
    # UID FETCH ... (CHANGEDSINCE n VANISHED) (§3.2.6)
    out = raw.ok(f"f UID FETCH 1:* (FLAGS) (CHANGEDSINCE {base} VANISHED)")
    assert out[0] == b"* VANISHED (EARLIER) 2,5\r\n"
    assert [ln.split()[1] for ln in out[1:-1]] == [b"2"]
    raw.close()


def test_qresync_vanished_replaces_expunge(server: CourrielServer) -> None:
    raw = _session(server)
    box = unique("qr")
    _fill(raw, box, 4)
    raw.ok("a ENABLE QRESYNC")
    raw.ok(f"b SELECT {box}")
    raw.ok("c STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    out = raw.ok("d EXPUNGE")
    assert out[0] == b"* VANISHED 2:3\r\n"
    assert re.fullmatch(rb"d OK \[HIGHESTMODSEQ \d+\] EXPUNGE completed\r\n", out[-1])
    other = _session(server)
    other.ok(f"x SELECT {box}")
    other.ok("y STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("z EXPUNGE")
    other.close()
    out = raw.ok("e NOOP")
    assert out[-2] == b"* VANISHED 1\r\n" and not any(b"EXPUNGE\r\n" in ln for ln in out)
    assert raw.ok("f FETCH 1:* (UID)")[0] == b"* 1 FETCH (UID 4)\r\n"
    raw.close()


def test_condstore_errors(server: CourrielServer) -> None:
    raw = _session(server)
    box = unique("cs")
    _fill(raw, box, 1)
    assert raw.cmd(f"a SELECT {box} (QRESYNC (1 1))")[-1].startswith(b"a BAD ")  # not enabled
    raw.ok(f"b SELECT {box}")
    assert raw.cmd("c FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1].startswith(b"c BAD ")
    assert raw.cmd("d FETCH 1 (FLAGS) (VANISHED)")[-1].startswith(b"d BAD ")
    assert raw.cmd("e FETCH 1 (FLAGS) (CHANGEDSINCE x)")[-1].startswith(b"e BAD ")
    assert raw.cmd("f STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)")[-1].startswith(b"f BAD ")
    assert raw.cmd(f"g SELECT {box} (NOSUCHPARAM)")[-1].startswith(b"g BAD ")
    raw.close()


def test_uid_fetch_flags_from_the_shared_index(server: CourrielServer) -> None:
    raw = _session(server)
    box = unique("ix")
    _fill(raw, box, 3)
    raw.ok("a ENABLE IMAP4rev2")  # no \Recent: the index answers alone
    raw.ok(f"b SELECT {box}")
    raw.ok("c STORE 2 +FLAGS.SILENT (\\Seen $Work)")
    other = _session(server)
    other.ok(f"x SELECT {box}")
    other.ok("y STORE 3 +FLAGS.SILENT (\\Flagged)")
    other.close()
    out = raw.ok("d UID FETCH 1:* (FLAGS)")
    assert out[:3] == [b"* 1 FETCH (UID 1 FLAGS ())\r\n", b"* 2 FETCH (UID 2 FLAGS (\\Seen $Work))\r\n",
                          b"* 3 FETCH (UID 3 FLAGS (\\Flagged))\r\n"], out  # fmt: skip
    out = raw.ok("e UID FETCH 2:3 (UID MODSEQ FLAGS)")
    assert out[0].startswith(b"* OK [HIGHESTMODSEQ ") and out[1].startswith(b"* 2 FETCH (UID 2 MODSEQ (")
    raw.close()
