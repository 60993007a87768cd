"""CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (LIST-EXTENDED, LIST-STATUS,
SPECIAL-USE, CHILDREN), LSUB, NAMESPACE, STATUS, SELECT, EXAMINE, over a raw socket."""

from __future__ import annotations

from tests.harness import CourrielServer
from tests.imap.conftest import Raw, imap, message, unique


def test_create_list_delete(raw: Raw) -> None:
    raw.login("bob@example.test")
    top = unique("top")
    raw.ok(f"a CREATE {top}/child/leaf/")
    assert raw.cmd(f"b CREATE {top}/child") == [f"b NO [ALREADYEXISTS] mailbox {top}/child exists\r\n".encode()] or \
        raw.cmd(f"b2 CREATE {top}/child")[-1].startswith(b"b2 NO [ALREADYEXISTS]")  # fmt: skip
    out = raw.ok(f'c LIST "" {top}*')
    assert out[:-1] == [
        f'* LIST (\\HasChildren) "/" "{top}"\r\n'.encode(),
        f'* LIST (\\HasChildren) "/" "{top}/child"\r\n'.encode(),
        f'* LIST (\\HasNoChildren) "/" "{top}/child/leaf"\r\n'.encode(),
    ]
    assert raw.ok(f'd LIST "" {top}/%')[:-1] == [f'* LIST (\\HasChildren) "/" "{top}/child"\r\n'.encode()]
    assert raw.ok(f'e LIST {top}/ %')[:-1] == [f'* LIST (\\HasChildren) "/" "{top}/child"\r\n'.encode()]
    # RFC 9051 §6.3.5: deleting a parent leaves it \Noselect; then it cannot be deleted again.
    raw.ok(f"f DELETE {top}/child")
    assert raw.ok(f'g LIST "" {top}/child')[:-1] == [f'* LIST (\\Noselect \\HasChildren) "/" "{top}/child"\r\n'.encode()]
    assert raw.cmd(f"h DELETE {top}/child")[-1].startswith(b"h NO [HASCHILDREN]")
    assert raw.cmd(f"i SELECT {top}/child")[-1].startswith(b"i NO [CANNOT]")
    raw.ok(f"j DELETE {top}/child/leaf")
    assert raw.cmd(f"k DELETE {top}/nothing") == [f"k NO [NONEXISTENT] no mailbox {top}/nothing\r\n".encode()]
    assert raw.cmd("l DELETE inbox") == [b"l NO [CANNOT] INBOX cannot be deleted\r\n"]
    assert raw.cmd("m CREATE INBOX") == [b"m NO [ALREADYEXISTS] INBOX always exists\r\n"]


def test_delimiter_and_namespace(raw: Raw) -> None:
    raw.login("bob@example.test")
    assert raw.ok('a LIST "" ""') == [b'* LIST (\\Noselect) "/" ""\r\n', b"a OK LIST completed\r\n"]
    assert raw.ok("b NAMESPACE")[0] == b'* NAMESPACE (("" "/")) NIL NIL\r\n'


def test_special_use_and_extended_list(raw: Raw) -> None:
    raw.login("carol@example.test")
    out = raw.ok('a LIST "" %')
    assert b'* LIST (\\HasNoChildren) "/" INBOX\r\n' in out
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n' in out
    out = raw.ok('b LIST (SPECIAL-USE) "" *')
    assert {line.split(b" ")[3] for line in out[:-1]} == {b"\\Archive)", b"\\Drafts)", b"\\Junk)", b"\\Sent)", b"\\Trash)"}
    box = unique("mine")
    raw.ok(f"c CREATE {box} (USE (\\Drafts))")
    assert raw.cmd(f"d CREATE {box}x (USE (\\Bogus))")[-1].startswith(b"d NO [USEATTR]")
    out = raw.ok(f'e LIST "" {box} RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT))')
    assert out[:-1] == [
        f'* LIST (\\HasNoChildren \\Drafts) "/" "{box}"\r\n'.encode(),
        f'* STATUS "{box}" (MESSAGES 0 UIDNEXT 1)\r\n'.encode(),
    ]


def test_subscriptions_lsub_and_recursivematch(raw: Raw) -> None:
    raw.login("carol@example.test")
    top = unique("sub")
    raw.ok(f"a CREATE {top}/x")
    raw.ok(f"b SUBSCRIBE {top}/x")
    raw.ok(f"c SUBSCRIBE {top}/gone")  # subscribing to a name that does not exist is allowed
    out = raw.ok(f'd LIST (SUBSCRIBED) "" {top}*')
    assert out[:-1] == [
        f'* LIST (\\NonExistent \\Subscribed) "/" "{top}/gone"\r\n'.encode(),
        f'* LIST (\\HasNoChildren \\Subscribed) "/" "{top}/x"\r\n'.encode(),
    ]
    out = raw.ok('e LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
    assert f'* LIST (\\HasChildren) "/" "{top}" ("CHILDINFO" ("SUBSCRIBED"))\r\n'.encode() in out
    out = raw.ok(f'f LSUB "" {top}/*')
    assert out[:-1] == [
        f'* LSUB (\\Noselect) "/" "{top}/gone"\r\n'.encode(),
        f'* LSUB () "/" "{top}/x"\r\n'.encode(),
    ]
    assert raw.ok(f'g LSUB "" {top}')[:-1] == [f'* LSUB (\\Noselect) "/" "{top}"\r\n'.encode()]
    raw.ok(f"h UNSUBSCRIBE {top}/x")
    assert raw.ok(f'i LSUB "" {top}/x')[:-1] == []


def test_rename_with_children_and_inbox(server: CourrielServer) -> None:
    raw = Raw(server.port("imap"))
    raw.login("erin@example.test")
    top = unique("ren")
    raw.ok(f"a CREATE {top}/kid")
    raw.ok(f"b RENAME {top} {top}-new")
    out = raw.ok(f'c LIST "" {top}*')
    assert [line.split(b'"/" ')[1] for line in out[:-1]] == [
        f'"{top}-new"\r\n'.encode(), f'"{top}-new/kid"\r\n'.encode()]  # fmt: skip
    assert raw.cmd(f"d RENAME {top} x")[-1].startswith(b"d NO [NONEXISTENT]")
    assert raw.cmd(f"e RENAME {top}-new Sent")[-1].startswith(b"e NO [ALREADYEXISTS]")
    # RFC 9051 §6.3.6: renaming INBOX moves its messages and leaves INBOX empty.
    client = imap(server, "erin@example.test")
    client.append("INBOX", None, None, message("to be moved"))
    raw.ok(f"f RENAME INBOX {top}-old-inbox")
    assert raw.ok(f"g STATUS {top}-old-inbox (MESSAGES)")[0] == f'* STATUS "{top}-old-inbox" (MESSAGES 1)\r\n'.encode()
    assert raw.ok("h STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 0)\r\n"
    client.logout()
    raw.close()


def test_non_ascii_names(raw: Raw) -> None:
    raw.login("dave@example.test")
    name = unique("Été")
    encoded = name.replace("É", "&AMk-").replace("é", "&AOk-")
    raw.ok(f"a CREATE {encoded}")
    assert f'"{encoded}"'.encode() in raw.ok(f'b LIST "" {encoded}')[0]
    raw.ok("c ENABLE IMAP4rev2")  # names are UTF-8 from now on (RFC 9051 §5.1)
    out = raw.ok(b'd LIST "" "' + name.encode() + b'"')
    utf8 = name.encode()
    assert out[0] == b'* LIST (\\HasNoChildren) "/" {%d}\r\n' % len(utf8) + utf8 + b"\r\n"


def test_status(server: CourrielServer) -> None:
    client = imap(server, "dave@example.test")
    box = unique("status")
    client.create(box)
    client.append(box, "(\\Seen)", None, message("one"))
    client.append(box, "(\\Deleted)", None, message("two"))
    typ, data = client.status(box, "(MESSAGES UIDNEXT UNSEEN DELETED SIZE RECENT)")
    assert typ == "OK"
    size = len(message("one")) * 2
    assert data[0] == f'"{box}" (MESSAGES 2 UIDNEXT 3 UNSEEN 1 DELETED 1 SIZE {size} RECENT 2)'.encode()
    assert client.status(unique("none"), "(MESSAGES)")[0] == "NO"
    client.logout()


def test_select_examine_responses(server: CourrielServer) -> None:
    client = imap(server, "dave@example.test")
    box = unique("sel")
    client.create(box)
    client.append(box, "(\\Seen $Important)", None, message("one"))
    client.append(box, None, None, message("two"))
    client.logout()
    raw = Raw(server.port("imap"))
    raw.login("dave@example.test")
    out = raw.ok(f"a EXAMINE {box}")
    assert out[0] == b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Important)\r\n"
    assert out[1] == b"* OK [PERMANENTFLAGS ()] read-only mailbox\r\n"
    assert out[2:5] == [b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n", b"* OK [UNSEEN 2] first unseen message\r\n"]
    assert out[5].startswith(b"* OK [UIDVALIDITY ") and out[6] == b"* OK [UIDNEXT 3] predicted next UID\r\n"
    assert out[-1] == b"a OK [READ-ONLY] EXAMINE completed\r\n"
    out = raw.ok(f"b SELECT {box}")
    assert out[0] == b"* OK [CLOSED] previous mailbox closed\r\n"
    assert b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Important \\*)] flags permitted\r\n" in out
    assert b"* 2 RECENT\r\n" in out and out[-1] == b"b OK [READ-WRITE] SELECT completed\r\n"
    # The \Recent messages now belong to this session: another one sees none.
    other = Raw(server.port("imap"))
    other.login("dave@example.test")
    assert b"* 0 RECENT\r\n" in other.ok(f"c SELECT {box}")
    # IMAP4rev2: no RECENT, no UNSEEN; a LIST with the name instead.
    other.ok("d UNSELECT")
    other.ok("e ENABLE IMAP4rev2")
    out = other.ok(f"f SELECT {box}")
    assert not any(b"RECENT" in line or b"UNSEEN" in line for line in out)
    assert f'* LIST () "/" "{box}"\r\n'.encode() in out
    assert raw.cmd("g SELECT nonexistent-box") == [b"* OK [CLOSED] previous mailbox closed\r\n",
                                                   b"g NO [NONEXISTENT] no mailbox nonexistent-box\r\n"]  # fmt: skip
    assert raw.cmd("h FETCH 1 FLAGS")[-1].startswith(b"h BAD ")  # a failed SELECT leaves no mailbox selected
    raw.close()
    other.close()
