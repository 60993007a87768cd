"""The pure IMAP command parser (courriel.imap.protocol): complete command bytes in.

Invariants: only ParseError is raised; the tag is what parse_tag finds; parsing is
deterministic; mailbox names, LOGIN strings and sequence sets survive encode -> parse
(the encoder the server uses for responses, RFC 9051 §9); sequence sets resolve to
ascending members without duplicates; modified UTF-7 is canonical both ways (RFC 3501 §5.1.3).
"""

from __future__ import annotations

from courriel.imap.protocol import encoder, utf7
from courriel.imap.protocol.parser import (
    COMMANDS,
    UID_COMMANDS,
    ParseError,
    parse_command,
    parse_tag,
)
from courriel.imap.protocol.types import (
    STAR,
    Append,
    Command,
    CopyMove,
    Create,
    Fetch,
    Login,
    MailboxArg,
    Rename,
    Select,
    SeqSet,
    Status,
    Store,
    UidExpunge,
)
from fuzz.common import check, constants

TOKENS = [
    b" ", b"(", b")", b"[", b"]", b"<", b">", b"{", b"}", b"~{", b"+}", b"\r\n", b"*", b"$", b"%", b'"', b"\\",
    b"NIL", b"INBOX", b"UID", b"FETCH", b"STORE", b"SEARCH", b"SORT", b"THREAD", b"APPEND", b"SELECT",
    b"EXAMINE", b"LIST", b"STATUS", b"LOGIN", b"AUTHENTICATE", b"COPY", b"MOVE", b"EXPUNGE", b"ENABLE",
    b"BODY", b"BODY.PEEK", b"BINARY", b"HEADER.FIELDS", b"HEADER.FIELDS.NOT", b"MIME", b"TEXT", b"ENVELOPE",
    b"BODYSTRUCTURE", b"FLAGS", b"+FLAGS.SILENT", b"-FLAGS", b"\\Seen", b"\\Deleted", b"OR", b"NOT", b"ALL",
    b"RETURN", b"CHARSET", b"UTF-8", b"MODSEQ", b"CHANGEDSINCE", b"UNCHANGEDSINCE", b"CONDSTORE", b"QRESYNC",
    b"VANISHED", b"1-Jan-2024", b'"1-Jan-2024 00:00:00 +0000"', b"&AOk-", b"&-", b"4294967295",
    b"4294967296", b"18446744073709551615", b"SUBSCRIBED", b"SPECIAL-USE", b"NOTIFY", b"SET", b"MAILBOXES",
    b"GETMETADATA", b"SETMETADATA", b"/private/comment", b"DEPTH", b"MAXSIZE", b"COMPRESS", b"DEFLATE",
]  # fmt: skip


def seeds() -> list[bytes]:
    raw = constants("tests/imap/test_parser.py", bytes) + constants(
        "tests/imap/test_fuzz.py", bytes
    )
    cmds = [r for r in raw if r.endswith(b"\r\n") and b" " in r]
    return [
        *cmds,
        b"a UID FETCH 1:*,5 (BODY.PEEK[1.2.HEADER.FIELDS (SUBJECT FROM)]<0.100> FLAGS) (CHANGEDSINCE 5 VANISHED)\r\n",
        b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 1:3)))\r\n",
        b'a APPEND "Sent" (\\Seen $x) "1-Jan-2024 00:00:00 +0000" {5+}\r\nhello ~{3+}\r\nx\x00y\r\n',
        b"a SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 OR (FROM bob SINCE 1-Feb-2024) NOT UID $\r\n",
        b"a UID SORT RETURN (ALL) (REVERSE DATE SUBJECT) UTF-8 UNDELETED MODSEQ 5\r\n",
        b"a NOTIFY SET STATUS (SELECTED (MessageNew (UID) MessageExpunge)) (MAILBOXES (a b) (FlagChange))\r\n",
        b'a LIST (SUBSCRIBED) "" ("*" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n',
        b"a SETMETADATA INBOX (/private/comment {3+}\r\nabc /shared/x NIL)\r\n",
        b"a CREATE &AOk-t&AOk- (USE (\\Drafts))\r\n",
        b"a STORE 1:4 +FLAGS.SILENT (UNCHANGEDSINCE 9) (\\Deleted kw)\r\n",
    ]


def _seqset_text(s: SeqSet) -> bytes:
    if s.saved:
        return b"$"

    def num(n: int) -> bytes:
        return b"*" if n == STAR else b"%d" % n

    return b",".join(num(lo) if lo == hi else num(lo) + b":" + num(hi) for lo, hi in s.ranges)


def _check_seqset(s: SeqSet) -> None:
    if not s.saved:
        check(s.ranges, "an empty sequence set parsed")
        again = parse_command(b"t UID EXPUNGE " + _seqset_text(s) + b"\r\n")
        assert isinstance(again.args, UidExpunge)
        check(again.args.seqset == s, f"sequence set {s} does not survive encode -> parse")
    for count in (0, 1, 7):
        members = s.indexes(count)
        check(members == sorted(set(members)), "indexes not ascending and unique")
        check(all(1 <= m <= count for m in members), "indexes outside 1..count")
    values = [2, 3, 5, 8, 13, 4294967295]
    picked = s.select(values)
    check(
        picked == sorted(set(picked)) and set(picked) <= set(values),
        "select() returned non-members",
    )


def _check_mailbox(name: str, utf8: bool) -> None:
    wire = encoder.mailbox(name, utf8)
    again = parse_command(b"t STATUS " + wire + b" (MESSAGES)\r\n", utf8=utf8)
    assert isinstance(again.args, Status)
    if name.upper() == "INBOX":
        check(again.args.mailbox.upper() == "INBOX", "INBOX changed")
    else:
        check(
            again.args.mailbox == name,
            f"mailbox {name!r} does not survive encode -> parse ({wire!r})",
        )


def _mailboxes(cmd: Command) -> list[str]:
    a = cmd.args
    if isinstance(a, MailboxArg | Select | Create | Status | Append | CopyMove):
        return [a.mailbox]
    if isinstance(a, Rename):
        return [a.old, a.new]
    return []


def _check_command(data: bytes, cmd: Command, utf8: bool) -> None:
    check(cmd.tag == parse_tag(data), "tag differs from parse_tag")
    base = cmd.name.removeprefix("UID ")
    check(base in (UID_COMMANDS if cmd.uid else COMMANDS), f"unknown command name {cmd.name}")
    check(parse_command(data, utf8=utf8) == cmd, "parsing is not deterministic")
    for name in _mailboxes(cmd):
        _check_mailbox(name, utf8)
    a = cmd.args
    if isinstance(a, Login):
        again = parse_command(
            b"t LOGIN " + encoder.astring(a.username) + b" " + encoder.astring(a.password) + b"\r\n"
        )
        check(again.args == a, "LOGIN strings do not survive encode -> parse")
    if isinstance(a, Fetch | Store | CopyMove | UidExpunge):
        _check_seqset(a.seqset)
    if isinstance(a, Fetch):
        for att in a.atts:
            check(att.label and att.label.isascii(), f"bad FETCH label {att.label!r}")
    if isinstance(a, Append):
        check(a.messages, "APPEND without a message")


def _check_utf7(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    check(utf7.decode(utf7.encode(text)) == text, "modified UTF-7 round trip")
    name = data.decode("latin-1")
    try:
        decoded = utf7.decode(name)
    except utf7.UTF7Error:
        return
    check(utf7.encode(decoded) == name, "utf7.decode accepted a non-canonical name")


def test_one(data: bytes) -> None:
    for utf8 in (False, True):
        try:
            cmd = parse_command(data, utf8=utf8)
        except ParseError:
            continue
        _check_command(data, cmd, utf8)
    _check_utf7(data[:200])
