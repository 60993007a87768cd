"""IMAP command parser (RFC 9051 §9 with RFC 3501 additions): complete command bytes in,
:class:`Command` out. Pure: no I/O, no store. One parse function per command name.
"""

from __future__ import annotations

from collections.abc import Callable

from courriel.imap.protocol import extensions as ext
from courriel.imap.protocol.fetchatts import parse_fetch_atts
from courriel.imap.protocol.reader import ParseError, Reader
from courriel.imap.protocol.searchkeys import parse_search
from courriel.imap.protocol.types import (
    Append,
    AppendMessage,
    Args,
    Authenticate,
    Command,
    CopyMove,
    Create,
    Enable,
    Fetch,
    Id,
    ListCmd,
    Login,
    MailboxArg,
    NoArgs,
    Rename,
    Search,
    Status,
    Store,
    UidExpunge,
)
from courriel.store.api import Flag, FlagMode, StoreError

__all__ = ["ParseError", "parse_command", "parse_tag"]

STATUS_ITEMS = frozenset(
    {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "HIGHESTMODSEQ",
     "MAILBOXID", "APPENDLIMIT", "DELETED-STORAGE"}
)  # fmt: skip
MAX_APPEND_MESSAGES = 1000  # MULTIAPPEND (RFC 3502)
SEARCH_RETURNS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURNS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})


def _none(r: Reader) -> Args:
    return NoArgs()


def _login(r: Reader) -> Args:
    r.sp()
    user = r.astring_text("user name")
    r.sp()
    password = r.astring_text("password")
    return Login(user, password)


def _authenticate(r: Reader) -> Args:
    r.sp()
    mech = r.atom("mechanism").upper()
    initial = None
    if not r.at_eol():
        r.sp()  # RFC 4959 SASL-IR: base64 or "=" for an empty response
        initial = r.take(frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="))
        if not initial:
            raise ParseError("invalid initial response")
    return Authenticate(mech, initial)


def _enable(r: Reader) -> Args:
    caps = []
    while not r.at_eol():
        r.sp()
        caps.append(r.atom("capability").upper())
    if not caps:
        raise ParseError("ENABLE needs a capability")
    return Enable(tuple(caps))


def _id(r: Reader) -> Args:
    r.sp()
    if r.accept(b"NIL"):
        return Id(None)
    r.expect(b"(")
    params: list[tuple[str, str | None]] = []
    while not r.accept(b")"):
        if params:
            r.sp()
        key = r.text(r.string())
        r.sp()
        value = r.nstring()
        params.append((key, None if value is None else r.text(value)))
        if len(params) > 30:  # RFC 2971 §3.3
            raise ParseError("too many ID fields")
    return Id(tuple(params))


def _mailbox(r: Reader) -> Args:
    r.sp()
    mailbox = r.mailbox()
    if not r.at_eol():  # SELECT parameters (RFC 4466), e.g. (CONDSTORE): none supported
        raise ParseError("unexpected parameters after mailbox name")
    return MailboxArg(mailbox)


def _create(r: Reader) -> Args:
    r.sp()
    mailbox = r.mailbox()
    uses: list[str] = []
    if not r.at_eol():
        # RFC 6154 §3: CREATE name (USE (\Sent))
        r.sp()
        r.expect(b"(")
        r.expect(b"USE", "USE")
        r.sp()
        uses = r.flag_list()
        r.expect(b")")
    return Create(mailbox, tuple(uses))


def _rename(r: Reader) -> Args:
    r.sp()
    old = r.mailbox()
    r.sp()
    return Rename(old, r.mailbox())


def _options(r: Reader, allowed: frozenset[str]) -> list[str]:
    r.expect(b"(")
    out: list[str] = []
    while not r.accept(b")"):
        if out:
            r.sp()
        word = r.atom("option").upper()
        if word not in allowed:
            raise ParseError(f"unsupported option {word}")
        out.append(word)
    return out


def _status_items(r: Reader) -> tuple[str, ...]:
    r.expect(b"(")
    items: list[str] = []
    while True:
        item = r.atom("status item").upper()
        if item not in STATUS_ITEMS:
            raise ParseError(f"unknown status item {item}")
        items.append(item)
        if r.accept(b")"):
            return tuple(items)
        r.sp()


def _list(r: Reader, lsub: bool = False) -> Args:
    r.sp()
    selection: list[str] = []
    extended = False
    if not lsub and r.peek() == 0x28:  # RFC 5258 list-select-opts
        selection = _options(r, LIST_SELECTION)
        extended = True
        r.sp()
    reference = r.decode_name(r.astring("reference"))
    r.sp()
    patterns: list[str] = []
    if not lsub and r.accept(b"("):
        extended = True
        while not r.accept(b")"):
            if patterns:
                r.sp()
            patterns.append(r.list_mailbox())
        if not patterns:
            raise ParseError("empty pattern list")
    else:
        patterns.append(r.list_mailbox())
    returns: list[str] = []
    status_items: tuple[str, ...] = ()
    if not lsub and not r.at_eol():
        r.sp()
        r.expect(b"RETURN", "RETURN")
        r.sp()
        extended = True
        r.expect(b"(")
        while not r.accept(b")"):
            if returns:
                r.sp()
            word = r.atom("return option").upper()
            if word not in LIST_RETURNS:
                raise ParseError(f"unsupported return option {word}")
            returns.append(word)
            if word == "STATUS":  # RFC 5819
                r.sp()
                status_items = _status_items(r)
    if "RECURSIVEMATCH" in selection and len(selection) == 1:
        raise ParseError("RECURSIVEMATCH needs another selection option")  # RFC 5258 §3
    return ListCmd(reference, tuple(patterns), frozenset(selection), frozenset(returns), status_items,
                   lsub=lsub, extended=extended)  # fmt: skip


def _lsub(r: Reader) -> Args:
    return _list(r, lsub=True)


def _status(r: Reader) -> Args:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return Status(mailbox, _status_items(r))


def _flags(r: Reader, names: list[str]) -> tuple[Flag, frozenset[str]]:
    try:
        return Flag.parse(n for n in names if n != "\\Recent")
    except StoreError as exc:
        raise ParseError(str(exc)) from None


def _append(r: Reader) -> Args:
    r.sp()
    mailbox = r.mailbox()
    messages = [_append_message(r)]
    while not r.at_eol():  # RFC 3502 MULTIAPPEND: more messages follow
        messages.append(_append_message(r))
        if len(messages) > MAX_APPEND_MESSAGES:
            raise ParseError("too many messages in one APPEND")
    return Append(mailbox, tuple(messages))


def _append_message(r: Reader) -> AppendMessage:
    r.sp()
    flags, keywords = Flag(0), frozenset[str]()
    if r.peek() == 0x28:
        names = r.flag_list()
        if "\\Recent" in names or "\\*" in names:
            raise ParseError("\\Recent and \\* cannot be appended")
        flags, keywords = _flags(r, names)
        r.sp()
    date = None
    if r.peek() == 0x22:
        date = r.date_time()
        r.sp()
    utf8 = r.accept(b"UTF8 (")  # RFC 6855 §4: UTF8 (~{n}literal)
    data, binary = r.literal(allow8=True)
    if utf8:
        r.expect(b")")
    return AppendMessage(flags, keywords, date, data, binary)


def _search(r: Reader) -> Args:
    r.sp()
    returns = None
    if r.accept(b"RETURN "):  # RFC 4731 / RFC 9051 §6.4.4
        returns = frozenset(_options(r, SEARCH_RETURNS))
        r.sp()
    charset = None
    if r.accept(b"CHARSET "):
        charset = r.astring("charset").decode("ascii", "replace").upper()
        r.sp()
    key, modseq = parse_search(r)
    return Search(key, charset, returns, modseq)


def _fetch(r: Reader) -> Args:
    r.sp()
    seqset = r.seqset()
    r.sp()
    atts, macro = parse_fetch_atts(r)
    changedsince = None
    vanished = False
    if r.accept(b" ("):  # RFC 7162 §3.1.4.1, §3.2.6: fetch modifiers
        while True:
            word = r.atom("fetch modifier").upper()
            if word == "CHANGEDSINCE" and changedsince is None:
                r.sp()
                changedsince = r.number(limit=ext.MAX_MODSEQ)
            elif word == "VANISHED" and not vanished:
                vanished = True
            else:
                raise ParseError(f"unknown fetch modifier {word}")
            if r.accept(b")"):
                break
            r.sp()
        if vanished and changedsince is None:
            raise ParseError("VANISHED needs CHANGEDSINCE")  # RFC 7162 §3.2.6
    return Fetch(seqset, atts, macro, changedsince, vanished)


def _store(r: Reader) -> Args:
    r.sp()
    seqset = r.seqset()
    r.sp()
    unchangedsince = None
    if r.accept(b"("):  # RFC 7162 §3.1.3: (UNCHANGEDSINCE n)
        r.expect(b"UNCHANGEDSINCE", "UNCHANGEDSINCE")
        r.sp()
        unchangedsince = r.number(limit=ext.MAX_MODSEQ)
        r.expect(b")")
        r.sp()
    mode = FlagMode.REPLACE
    if r.accept(b"+"):
        mode = FlagMode.ADD
    elif r.accept(b"-"):
        mode = FlagMode.REMOVE
    r.expect(b"FLAGS", "FLAGS")
    silent = r.accept(b".SILENT")
    r.sp()
    if r.peek() == 0x28:
        names = r.flag_list()
    else:  # RFC 9051: flag *(SP flag) without parentheses
        names = [r.flag()]
        while not r.at_eol():
            r.sp()
            names.append(r.flag())
    if "\\*" in names:
        raise ParseError("\\* is not a flag")
    flags, keywords = _flags(r, names)
    return Store(seqset, mode, silent, flags, keywords, unchangedsince)


def _copy(r: Reader) -> Args:
    r.sp()
    seqset = r.seqset()
    r.sp()
    return CopyMove(seqset, r.mailbox())


def _uid_expunge(r: Reader) -> Args:
    r.sp()
    return UidExpunge(r.seqset())


Parse = Callable[[Reader], Args]

COMMANDS: dict[str, Parse] = {
    "CAPABILITY": _none, "NOOP": _none, "LOGOUT": _none, "STARTTLS": _none,
    "AUTHENTICATE": _authenticate, "LOGIN": _login, "ENABLE": _enable, "ID": _id,
    "SELECT": ext.select, "EXAMINE": ext.select, "CREATE": _create, "DELETE": _mailbox,
    "RENAME": _rename, "SUBSCRIBE": _mailbox, "UNSUBSCRIBE": _mailbox, "LIST": _list,
    "LSUB": _lsub, "NAMESPACE": _none, "STATUS": _status, "APPEND": _append, "IDLE": _none,
    "CHECK": _none, "CLOSE": _none, "UNSELECT": _none, "EXPUNGE": _none, "SEARCH": _search,
    "FETCH": _fetch, "STORE": _store, "COPY": _copy, "MOVE": _copy,
    "SORT": ext.sort, "THREAD": ext.thread, "GETQUOTA": ext.getquota, "GETQUOTAROOT": ext.getquotaroot,
    "SETQUOTA": ext.setquota, "GETMETADATA": ext.getmetadata, "SETMETADATA": ext.setmetadata,
    "NOTIFY": ext.notify, "COMPRESS": ext.compress,
}  # fmt: skip
UID_COMMANDS: dict[str, Parse] = {
    "FETCH": _fetch, "STORE": _store, "COPY": _copy, "MOVE": _copy, "SEARCH": _search,
    "EXPUNGE": _uid_expunge, "SORT": ext.sort, "THREAD": ext.thread,
}  # fmt: skip


def parse_tag(data: bytes) -> str | None:
    """The tag of a (possibly malformed) command, to address BAD to it; None when absent."""
    r = Reader(data)
    try:
        tag = r.tag()
        r.sp()
    except ParseError:
        return None
    return tag


def parse_command(data: bytes, utf8: bool = False) -> Command:
    """Parse one complete command (with its final CRLF). Raises ParseError."""
    r = Reader(data, utf8=utf8)
    tag = r.tag()
    r.sp()
    name = r.atom("command").upper()
    table = COMMANDS
    if name == "UID":
        r.sp()
        name = r.atom("command").upper()
        table = UID_COMMANDS
        full = "UID " + name
    else:
        full = name
    parse = table.get(name)
    if parse is None:
        raise ParseError(f"unknown command {full}")
    args = parse(r)
    r.end()
    return Command(tag, full, args)
