"""The pure command parser, on tables of raw bytes (RFC 9051 §9 formal syntax)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from courriel.imap.protocol import utf7
from courriel.imap.protocol.parser import ParseError, parse_command, parse_tag
from courriel.imap.protocol.reader import literal_suffix
from courriel.imap.protocol.types import (
    STAR,
    Append,
    AppendMessage,
    Authenticate,
    Command,
    CopyMove,
    Create,
    Enable,
    Fetch,
    FetchAtt,
    Id,
    ListCmd,
    Login,
    MailboxArg,
    NoArgs,
    RecentKey,
    Rename,
    Search,
    Section,
    SeqKey,
    SeqSet,
    Status,
    Store,
    UidExpunge,
)
from courriel.store.api import (
    All,
    And,
    BodyContains,
    DateCompare,
    DateField,
    Flag,
    FlagMode,
    HasFlag,
    HasKeyword,
    HeaderContains,
    Not,
    Or,
    SizeCompare,
)

UTC = UTC
DAY = 86400
FEB1 = int(datetime(2024, 2, 1, tzinfo=UTC).timestamp())

SEEN_1_3 = And((HasFlag(Flag.SEEN), SeqKey(SeqSet(((1, 3),)))))
OR_KEY = Or((SEEN_1_3, Not(HasKeyword("$x"))))

DATES = And((DateCompare(DateField.INTERNAL, "since", FEB1, FEB1 + DAY),
             DateCompare(DateField.SENT, "before", FEB1, FEB1 + DAY)))  # fmt: skip
TEXTS = And((HeaderContains("x-spam", "yes"), BodyContains("foo"), BodyContains("bar", whole=True)))
NEW_OLD = And((And((RecentKey(), Not(HasFlag(Flag.SEEN)))), Not(RecentKey())))
UID_LARGER = And((SeqKey(SeqSet(((5, STAR),)), uid=True), SizeCompare(True, 100)))

VALID: list[tuple[bytes, Command]] = [
    (b"a1 NOOP\r\n", Command("a1", "NOOP")),
    (b"a1 noop\n", Command("a1", "NOOP")),
    (b"x CAPABILITY\r\n", Command("x", "CAPABILITY")),
    (b"a LOGIN alice secret\r\n", Command("a", "LOGIN", Login("alice", "secret"))),
    (b'a LOGIN "al ice" "p\\"w\\\\"\r\n', Command("a", "LOGIN", Login("al ice", 'p"w\\'))),
    (b"a LOGIN {5}\r\nalice {2+}\r\npw\r\n", Command("a", "LOGIN", Login("alice", "pw"))),
    (b"a LOGIN alice {0}\r\n\r\n", Command("a", "LOGIN", Login("alice", ""))),
    (b"a AUTHENTICATE PLAIN\r\n", Command("a", "AUTHENTICATE", Authenticate("PLAIN", None))),
    (b"a AUTHENTICATE plain AGFsaWNlAHB3\r\n", Command("a", "AUTHENTICATE", Authenticate("PLAIN", b"AGFsaWNlAHB3"))),
    (b"a AUTHENTICATE PLAIN =\r\n", Command("a", "AUTHENTICATE", Authenticate("PLAIN", b"="))),
    (b"a ENABLE IMAP4rev2 CONDSTORE\r\n", Command("a", "ENABLE", Enable(("IMAP4REV2", "CONDSTORE")))),
    (b"a ID NIL\r\n", Command("a", "ID", Id(None))),
    (b'a ID ("name" "mutt" "version" NIL)\r\n', Command("a", "ID", Id((("name", "mutt"), ("version", None))))),
    (b"a SELECT inbox\r\n", Command("a", "SELECT", MailboxArg("inbox"))),
    (b'a EXAMINE "Sent Items"\r\n', Command("a", "EXAMINE", MailboxArg("Sent Items"))),
    (b"a SELECT &AOk-t&AOk-\r\n", Command("a", "SELECT", MailboxArg("été"))),
    (b"a SELECT \"Caf\xc3\xa9\"\r\n", Command("a", "SELECT", MailboxArg("Café"))),
    (b"a CREATE a/b/\r\n", Command("a", "CREATE", Create("a/b/"))),
    (b"a CREATE Mine (USE (\\Sent))\r\n", Command("a", "CREATE", Create("Mine", ("\\Sent",)))),
    (b"a DELETE x\r\n", Command("a", "DELETE", MailboxArg("x"))),
    (b"a RENAME INBOX old-inbox\r\n", Command("a", "RENAME", Rename("INBOX", "old-inbox"))),
    (b"a SUBSCRIBE x\r\n", Command("a", "SUBSCRIBE", MailboxArg("x"))),
    (b"a UNSUBSCRIBE x\r\n", Command("a", "UNSUBSCRIBE", MailboxArg("x"))),
    (b'a LIST "" *\r\n', Command("a", "LIST", ListCmd("", ("*",)))),
    (b'a LIST "" %/x*\r\n', Command("a", "LIST", ListCmd("", ("%/x*",)))),
    (b'a LIST "" ""\r\n', Command("a", "LIST", ListCmd("", ("",)))),
    (b'a LSUB "" *\r\n', Command("a", "LSUB", ListCmd("", ("*",), lsub=True))),
    (
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("*" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n',
        Command("a", "LIST", ListCmd("", ("*", "%"), frozenset({"SUBSCRIBED", "RECURSIVEMATCH"}),
                                     frozenset({"CHILDREN", "STATUS"}), ("MESSAGES", "UNSEEN"), extended=True)),
    ),
    (b'a LIST "" * RETURN (SPECIAL-USE)\r\n',
     Command("a", "LIST", ListCmd("", ("*",), returns=frozenset({"SPECIAL-USE"}), extended=True))),
    (b"a NAMESPACE\r\n", Command("a", "NAMESPACE")),
    (b"a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)\r\n",
     Command("a", "STATUS", Status("INBOX", ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT")))),
    (b"a APPEND INBOX {3}\r\nabc\r\n", Command("a", "APPEND", Append("INBOX", (AppendMessage(Flag(0), frozenset(), None, b"abc"),)))),
    (b'a APPEND INBOX (\\Seen $Junk) " 1-Jan-2020 10:00:00 -0130" {3+}\r\nabc\r\n',
     Command("a", "APPEND", Append("INBOX", (AppendMessage(Flag.SEEN, frozenset({"$Junk"}),
             datetime(2020, 1, 1, 10, 0, tzinfo=timezone(-timedelta(hours=1, minutes=30))), b"abc"),)))),
    (b"a APPEND INBOX ~{3}\r\na\x00c\r\n",
     Command("a", "APPEND", Append("INBOX", (AppendMessage(Flag(0), frozenset(), None, b"a\x00c", binary=True),)))),
    (b"a IDLE\r\n", Command("a", "IDLE")),
    (b"a CHECK\r\n", Command("a", "CHECK")),
    (b"a CLOSE\r\n", Command("a", "CLOSE")),
    (b"a UNSELECT\r\n", Command("a", "UNSELECT")),
    (b"a EXPUNGE\r\n", Command("a", "EXPUNGE")),
    (b"a UID EXPUNGE 3:5,9\r\n", Command("a", "UID EXPUNGE", UidExpunge(SeqSet(((3, 5), (9, 9)))))),
    (b"a SEARCH ALL\r\n", Command("a", "SEARCH", Search(All()))),
    (b"a SEARCH UNSEEN FROM bob\r\n",
     Command("a", "SEARCH", Search(And((Not(HasFlag(Flag.SEEN)), HeaderContains("from", "bob")))))),
    (b'a UID SEARCH CHARSET UTF-8 SUBJECT "caf\xc3\xa9"\r\n',
     Command("a", "UID SEARCH", Search(HeaderContains("subject", "café"), "UTF-8"))),
    (b"a SEARCH OR (SEEN 1:3) NOT KEYWORD $x\r\n", Command("a", "SEARCH", Search(OR_KEY))),
    (b"a SEARCH RETURN (MIN MAX COUNT SAVE) UID 5:* LARGER 100\r\n",
     Command("a", "SEARCH", Search(UID_LARGER, returns=frozenset({"MIN", "MAX", "COUNT", "SAVE"})))),
    (b"a SEARCH RETURN () $\r\n", Command("a", "SEARCH", Search(SeqKey(SeqSet(saved=True)), returns=frozenset()))),
    (b"a SEARCH SINCE 1-Feb-2024 SENTBEFORE \"1-Feb-2024\"\r\n",
     Command("a", "SEARCH", Search(DATES))),
    (b"a SEARCH HEADER X-Spam yes BODY foo TEXT {3}\r\nbar\r\n",
     Command("a", "SEARCH", Search(TEXTS))),
    (b"a SEARCH NEW OLD\r\n",
     Command("a", "SEARCH", Search(NEW_OLD))),
    (b"a FETCH 1:* FLAGS\r\n", Command("a", "FETCH", Fetch(SeqSet(((1, STAR),)), (FetchAtt("FLAGS", label=b"FLAGS"),)))),
    (b"a FETCH 2,4:3 fast\r\n", Command("a", "FETCH", Fetch(SeqSet(((2, 2), (4, 3))), tuple(
        FetchAtt(n, label=n.encode()) for n in ("FLAGS", "INTERNALDATE", "RFC822.SIZE")), macro=True))),
    (b"a UID FETCH 1 (UID BODY.PEEK[1.2.HEADER.FIELDS (Subject from)]<10.20>)\r\n",
     Command("a", "UID FETCH", Fetch(SeqSet(((1, 1),)), (
         FetchAtt("UID", label=b"UID"),
         FetchAtt("BODY[]", Section((1, 2), "HEADER.FIELDS", ("Subject", "from")), (10, 20), True,
                  b"BODY[1.2.HEADER.FIELDS (SUBJECT FROM)]<10>"))))),
    (b"a FETCH 1 (BODY[] BODY[TEXT] BODY[3.MIME] BINARY[2] BINARY.SIZE[2] BINARY.PEEK[]<0.5>)\r\n",
     Command("a", "FETCH", Fetch(SeqSet(((1, 1),)), (
         FetchAtt("BODY[]", Section(), None, False, b"BODY[]"),
         FetchAtt("BODY[]", Section((), "TEXT"), None, False, b"BODY[TEXT]"),
         FetchAtt("BODY[]", Section((3,), "MIME"), None, False, b"BODY[3.MIME]"),
         FetchAtt("BINARY[]", Section((2,)), None, False, b"BINARY[2]"),
         FetchAtt("BINARY.SIZE[]", Section((2,)), None, False, b"BINARY.SIZE[2]"),
         FetchAtt("BINARY[]", Section(), (0, 5), True, b"BINARY[]<0>"))))),
    (b"a STORE 1:3 +FLAGS.SILENT (\\Seen $Forwarded)\r\n",
     Command("a", "STORE", Store(SeqSet(((1, 3),)), FlagMode.ADD, True, Flag.SEEN, frozenset({"$Forwarded"})))),
    (b"a UID STORE $ -FLAGS \\Deleted \\Draft\r\n",
     Command("a", "UID STORE", Store(SeqSet(saved=True), FlagMode.REMOVE, False, Flag.DELETED | Flag.DRAFT, frozenset()))),
    (b"a STORE 1 FLAGS ()\r\n", Command("a", "STORE", Store(SeqSet(((1, 1),)), FlagMode.REPLACE, False, Flag(0), frozenset()))),
    (b"a COPY 1:* Archive\r\n", Command("a", "COPY", CopyMove(SeqSet(((1, STAR),)), "Archive"))),
    (b"a UID MOVE 7 Trash\r\n", Command("a", "UID MOVE", CopyMove(SeqSet(((7, 7),)), "Trash"))),
    (b"a LOGOUT\r\n", Command("a", "LOGOUT", NoArgs())),
]


@pytest.mark.parametrize(("raw", "expected"), VALID, ids=[v[0][:40].decode("latin-1") for v in VALID])
def test_valid_commands(raw: bytes, expected: Command) -> None:
    assert parse_command(raw) == expected


INVALID = [
    b"\r\n",
    b"a\r\n",
    b"a  NOOP\r\n",
    b"a NOOP extra\r\n",
    b"a FOO\r\n",
    b"a UID NOOP\r\n",
    b"+ NOOP\r\n",
    b"a LOGIN alice\r\n",
    b'a LOGIN "unterminated\r\n',
    b'a LOGIN "bad\\escape" x\r\n',
    b"a LOGIN {10}\r\nshort\r\n",
    b"a LOGIN {3}\r\na\x00c x\r\n",
    b"a SELECT\r\n",
    b"a SELECT &Jjo\r\n",  # unterminated modified UTF-7
    b"a SELECT &AGE-\r\n",  # "a" encoded in base64: not canonical
    b"a FETCH 0 FLAGS\r\n",
    b"a FETCH 1 FLAGZ\r\n",
    b"a FETCH 1 (FLAGS\r\n",
    b"a FETCH 1 BODY[1.]\r\n",
    b"a FETCH 1 BODY[MIME]\r\n",
    b"a FETCH 1 BINARY[HEADER]\r\n",
    b"a FETCH 1 BODY[1]<5>\r\n",
    b"a FETCH 1 BINARY.SIZE[1]<0.5>\r\n",
    b"a FETCH 1 UID[1]\r\n",
    b"a FETCH 1:x FLAGS\r\n",
    b"a FETCH 99999999999 FLAGS\r\n",
    b"a STORE 1 FLAGS (\\Bogus)\r\n",
    b"a STORE 1 +FLAGS (\\*)\r\n",
    b"a STORE 1 XFLAGS (\\Seen)\r\n",
    b"a SEARCH\r\n",
    b"a SEARCH FOO\r\n",
    b"a SEARCH (SEEN\r\n",
    b"a SEARCH OR SEEN\r\n",
    b"a SEARCH SINCE 31-Feb-2024\r\n",
    b"a SEARCH SINCE 1-Foo-2024\r\n",
    b"a SEARCH RETURN (BOGUS) ALL\r\n",
    b"a SEARCH " + b"NOT " * 100 + b"SEEN\r\n",
    b"a STATUS INBOX (BOGUS)\r\n",
    b"a STATUS INBOX ()\r\n",
    b'a LIST (BOGUS) "" *\r\n',
    b'a LIST (RECURSIVEMATCH) "" *\r\n',
    b'a LIST "" * RETURN (BOGUS)\r\n',
    b"a APPEND INBOX (\\Recent) {1}\r\nx\r\n",
    b'a APPEND INBOX "32-Jan-2020 10:00:00 +0000" {1}\r\nx\r\n',
    b"a APPEND INBOX abc\r\n",
    b"a ENABLE\r\n",
    b"a CREATE x (USE \\Sent)\r\n",
    b"a AUTHENTICATE PLAIN !!!\r\n",
]


@pytest.mark.parametrize("raw", INVALID, ids=[v[:40].decode("latin-1") for v in INVALID])
def test_invalid_commands(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(raw)


def test_utf8_mode_takes_names_as_utf8() -> None:
    # IMAP4rev2 (RFC 9051 §5.1): "&" is an ordinary character.
    assert parse_command(b"a SELECT R&D\r\n", utf8=True).args == MailboxArg("R&D")
    with pytest.raises(ParseError):
        parse_command(b"a SELECT R&D\r\n")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a LOGIN {5}\r\n", (5, False, False)),
        (b"a LOGIN {5+}\r\n", (5, True, False)),
        (b"a APPEND INBOX ~{12}\r\n", (12, False, True)),
        (b"a APPEND INBOX ~{12+}\n", (12, True, True)),
        (b"a LOGIN {5}x\r\n", None),
        (b'a LOGIN "{5}"\r\n', None),
        (b"a NOOP\r\n", None),
        (b"a LOGIN {}\r\n", None),
    ],
)
def test_literal_suffix(raw: bytes, expected: tuple[int, bool, bool] | None) -> None:
    assert literal_suffix(raw) == expected


@pytest.mark.parametrize(
    ("raw", "tag"), [(b"a1 FOO\r\n", "a1"), (b"x.y NOOP\r\n", "x.y"), (b"+x NOOP\r\n", None), (b"\r\n", None)]
)
def test_parse_tag(raw: bytes, tag: str | None) -> None:
    assert parse_tag(raw) == tag


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("INBOX", "INBOX"),
        ("a&b", "a&-b"),
        ("été", "&AOk-t&AOk-"),
        ("日本語", "&ZeVnLIqe-"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("😀", "&2D3eAA-"),
        ("é&", "&AOk-&-"),  # "&-" after a run is an "&", not a null shift
        ("éé", "&AOkA6Q-"),
    ],
)
def test_modified_utf7(text: str, encoded: str) -> None:
    assert utf7.encode(text) == encoded
    assert utf7.decode(encoded) == text


@pytest.mark.parametrize(
    "bad",
    # "&AOk-&AOk-": a null shift between two runs (found by fuzz/targets/imap_command.py).
    ["&", "&Jjo!-", "&AGE-", "caf\xe9", "&U,BTFw", "&2D0-", "&AOk-&AOk-", "x&ZeVnLA-&ip4-"],
)
def test_modified_utf7_errors(bad: str) -> None:
    with pytest.raises(utf7.UTF7Error):
        utf7.decode(bad)


@pytest.mark.parametrize(
    ("seqset", "values", "expected"),
    [
        (SeqSet(((1, STAR),)), [3, 5, 9], [3, 5, 9]),
        (SeqSet(((STAR, STAR),)), [3, 5, 9], [9]),
        (SeqSet(((20, STAR),)), [3, 5, 9], [9]),  # RFC 9051 §9: n:* includes the largest
        (SeqSet(((6, 4), (5, 5), (1, 3))), [3, 5, 9], [3, 5]),
        (SeqSet(((1, 2),)), [], []),
    ],
)
def test_seqset_select(seqset: SeqSet, values: list[int], expected: list[int]) -> None:
    assert seqset.select(values) == expected


def test_seqset_indexes() -> None:
    assert SeqSet(((2, STAR), (1, 1), (3, 3))).indexes(4) == [1, 2, 3, 4]
    assert SeqSet(((STAR, 2),)).indexes(3) == [2, 3]
