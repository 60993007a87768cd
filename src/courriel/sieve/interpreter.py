"""Running a compiled script over one message for one user: tests, actions, variables.

The result is an :class:`Outcome` (where the message goes, with which flags; redirects;
a rejection; a vacation reply to consider). Nothing here touches the store or the network:
:mod:`courriel.sieve.delivery` carries the outcome out. A :class:`SieveRuntimeError`
(RFC 5228 §2.10.6) makes delivery fall back to the implicit keep.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from courriel.mime.headers import parse_date
from courriel.sieve.grammar import Arg, Node
from courriel.sieve.match import Matcher
from courriel.sieve.message import Envelope, MessageView
from courriel.sieve.validate import Script

#: Bounds on what one run may do.
MAX_REDIRECTS = 4
MAX_FILEINTO = 32
MAX_VARIABLES = 128
MAX_VARIABLE_LENGTH = 4000
MAX_STEPS = 10_000

_VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*|[0-9]+)\}")


class SieveRuntimeError(Exception):
    pass


@dataclass(slots=True)
class FileInto:
    mailbox: str
    flags: tuple[str, ...]
    create: bool = False


@dataclass(slots=True)
class Vacation:
    reason: str
    days: int
    subject: str | None
    from_: str | None
    addresses: tuple[str, ...]
    mime: bool
    handle: str | None


@dataclass(slots=True)
class Outcome:
    #: Mailboxes to store into (explicit keep is ``INBOX``), in order, deduplicated.
    fileinto: list[FileInto] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)
    reject: str | None = None
    ereject: bool = False
    vacation: Vacation | None = None
    implicit_keep: bool = True
    #: Flags for the implicit keep (RFC 5232 §3: the internal variable at the end).
    keep_flags: tuple[str, ...] = ()
    discarded: bool = False


class _Stop(Exception):
    pass


def _flag_list(values: list[str]) -> list[str]:
    """RFC 5232 §3: flag strings are space-separated lists; duplicates removed, case-insensitively."""
    out: list[str] = []
    seen: set[str] = set()
    for v in values:
        for f in v.split():
            if f.lower() not in seen:
                seen.add(f.lower())
                out.append(f)
    return out


class Interpreter:
    def __init__(
        self,
        script: Script,
        message: MessageView,
        envelope: Envelope,
        mailbox_exists: Callable[[str], bool] = lambda name: False,
        now: datetime | None = None,
    ) -> None:
        self.script = script
        self.msg = message
        self.env = envelope
        self.mailbox_exists = mailbox_exists
        self.now = now or datetime.now(UTC)
        self.variables: dict[str, str] = {}
        self.match_vars: list[str] = []
        self.flags: dict[str, list[str]] = {"": []}  # "" is the internal variable
        self.out = Outcome()
        self.steps = 0
        self.explicit_keep = False
        self.use_vars = "variables" in script.extensions

    def run(self) -> Outcome:
        try:
            self.block(self.script.commands)
        except _Stop:
            pass
        out = self.out
        out.keep_flags = tuple(self.flags[""])
        if out.reject is not None and (out.fileinto or self.explicit_keep or out.redirects or out.vacation):
            # RFC 5429 §2.1: reject with keep, fileinto, redirect or vacation is an error.
            raise SieveRuntimeError("reject cannot be combined with keep, fileinto, redirect or vacation")
        return out

    # --- strings and variables (RFC 5229) ----------------------------------------------------
    def expand(self, s: str) -> str:
        if not self.use_vars or "${" not in s:
            return s

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.isdigit():
                i = int(name)
                return self.match_vars[i] if i < len(self.match_vars) else ""
            return self.variables.get(name.lower(), "")

        return _VAR_REF.sub(sub, s)[:MAX_VARIABLE_LENGTH * 4]

    def strings(self, arg: Arg | None) -> list[str]:
        if arg is None:
            return []
        if isinstance(arg, str):
            return [self.expand(arg)]
        if isinstance(arg, list):
            return [self.expand(a) for a in arg]
        return [str(arg)]

    def string(self, arg: Arg | None) -> str:
        values = self.strings(arg)
        return values[0] if values else ""

    # --- commands ----------------------------------------------------------------------------
    def block(self, nodes: list[Node]) -> None:
        taken = False  # whether an if/elsif of the current chain ran
        for node in nodes:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise SieveRuntimeError("script too long to run")
            name = node.name
            if name == "require":
                continue
            if name == "if":
                taken = self.test(node.tests[0])
                if taken:
                    assert node.block is not None
                    self.block(node.block)
                continue
            if name == "elsif":
                if not taken:
                    taken = self.test(node.tests[0])
                    if taken:
                        assert node.block is not None
                        self.block(node.block)
                continue
            if name == "else":
                if not taken:
                    assert node.block is not None
                    self.block(node.block)
                continue
            getattr(self, "cmd_" + name)(node)

    def cmd_stop(self, node: Node) -> None:
        raise _Stop

    def _action_flags(self, node: Node) -> tuple[str, ...]:
        if "flags" in node.tags:
            return tuple(_flag_list(self.strings(node.tags["flags"])))
        return tuple(self.flags[""])

    def _file(self, target: FileInto) -> None:
        for existing in self.out.fileinto:
            if existing.mailbox == target.mailbox:  # RFC 5228 §4.1: filed once
                existing.create = existing.create or target.create
                return
        if len(self.out.fileinto) >= MAX_FILEINTO:
            raise SieveRuntimeError("too many fileinto actions")
        self.out.fileinto.append(target)

    def cmd_keep(self, node: Node) -> None:
        self.explicit_keep = True
        self._file(FileInto("INBOX", self._action_flags(node)))
        self.out.implicit_keep = False

    def cmd_discard(self, node: Node) -> None:
        self.out.implicit_keep = False
        self.out.discarded = True

    def cmd_fileinto(self, node: Node) -> None:
        mailbox = self.string(node.positional[0])
        if not mailbox:
            raise SieveRuntimeError("fileinto an empty mailbox name")
        self._file(FileInto(mailbox, self._action_flags(node), "create" in node.tags))
        if "copy" not in node.tags:  # RFC 3894: :copy keeps the implicit keep
            self.out.implicit_keep = False

    def cmd_redirect(self, node: Node) -> None:
        address = self.string(node.positional[0]).strip()
        if "@" not in address or any(c in address for c in "<>\r\n ,"):
            raise SieveRuntimeError(f"redirect to an invalid address {address!r}")
        if address.lower() not in (a.lower() for a in self.out.redirects):
            if len(self.out.redirects) >= MAX_REDIRECTS:
                raise SieveRuntimeError("too many redirects")
            self.out.redirects.append(address)
        if "copy" not in node.tags:
            self.out.implicit_keep = False

    def _reject(self, node: Node, extended: bool) -> None:
        if self.out.reject is not None:
            raise SieveRuntimeError("more than one reject")
        self.out.reject = self.string(node.positional[0])
        self.out.ereject = extended
        self.out.implicit_keep = False

    def cmd_reject(self, node: Node) -> None:
        self._reject(node, False)

    def cmd_ereject(self, node: Node) -> None:
        self._reject(node, True)

    def cmd_vacation(self, node: Node) -> None:
        if self.out.vacation is not None:
            raise SieveRuntimeError("more than one vacation")  # RFC 5230 §4.7
        tags = node.tags
        days = tags.get("days")
        self.out.vacation = Vacation(
            reason=self.string(node.positional[0]),
            days=int(days) if isinstance(days, int) else 7,
            subject=self.string(tags["subject"]) if "subject" in tags else None,
            from_=self.string(tags["from"]) if "from" in tags else None,
            addresses=tuple(self.strings(tags.get("addresses"))),
            mime="mime" in tags,
            handle=self.string(tags["handle"]) if "handle" in tags else None,
        )

    def _flag_target(self, node: Node) -> tuple[str, list[str]]:
        if len(node.positional) == 2:
            return self.string(node.positional[0]).lower(), self.strings(node.positional[1])
        return "", self.strings(node.positional[0])

    def cmd_setflag(self, node: Node) -> None:
        var, values = self._flag_target(node)
        self._set_flags(var, _flag_list(values))

    def cmd_addflag(self, node: Node) -> None:
        var, values = self._flag_target(node)
        self._set_flags(var, _flag_list(self._get_flags(var) + values))

    def cmd_removeflag(self, node: Node) -> None:
        var, values = self._flag_target(node)
        drop = {f.lower() for f in _flag_list(values)}
        self._set_flags(var, [f for f in self._get_flags(var) if f.lower() not in drop])

    def _get_flags(self, var: str) -> list[str]:
        if var == "":
            return list(self.flags[""])
        return _flag_list([self.variables.get(var, "")])

    def _set_flags(self, var: str, flags: list[str]) -> None:
        if var == "":
            self.flags[""] = flags
        else:
            self._set_var(var, " ".join(flags))

    def _set_var(self, name: str, value: str) -> None:
        if name not in self.variables and len(self.variables) >= MAX_VARIABLES:
            raise SieveRuntimeError("too many variables")
        self.variables[name] = value[:MAX_VARIABLE_LENGTH]

    def cmd_set(self, node: Node) -> None:
        name = str(node.positional[0]).lower()
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise SieveRuntimeError(f"invalid variable name {name!r}")
        value = self.string(node.positional[1])
        tags = node.tags
        # RFC 5229 §4.1: modifiers apply by precedence, highest first.
        if "lower" in tags:
            value = value.lower()
        if "upper" in tags:
            value = value.upper()
        if "lowerfirst" in tags:
            value = value[:1].lower() + value[1:]
        if "upperfirst" in tags:
            value = value[:1].upper() + value[1:]
        if "quotewildcard" in tags:
            value = re.sub(r"([*?\\])", r"\\\1", value)
        if "length" in tags:
            value = str(len(value))
        self._set_var(name, value)

    # --- tests -------------------------------------------------------------------------------
    def test(self, node: Node) -> bool:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise SieveRuntimeError("script too long to run")
        result: bool = getattr(self, "test_" + node.name)(node)
        return result

    def test_true(self, node: Node) -> bool:
        return True

    def test_false(self, node: Node) -> bool:
        return False

    def test_not(self, node: Node) -> bool:
        return not self.test(node.tests[0])

    def test_allof(self, node: Node) -> bool:
        return all(self.test(t) for t in node.tests)

    def test_anyof(self, node: Node) -> bool:
        return any(self.test(t) for t in node.tests)

    def test_size(self, node: Node) -> bool:
        if "over" in node.tags:
            return self.msg.size > int(node.tags["over"])  # type: ignore[arg-type]
        return self.msg.size < int(node.tags["under"])  # type: ignore[arg-type]

    def test_exists(self, node: Node) -> bool:
        return all(self.msg.raw_headers(h) for h in self.strings(node.positional[0]))

    def _match(self, node: Node, values: list[str], keys: list[str]) -> bool:
        matcher = Matcher.from_tags(node.tags)
        ok, captures = matcher.test(values, keys)
        if ok and matcher.kind == "matches" and self.use_vars:
            self.match_vars = captures  # RFC 5229 §3.2: only a successful :matches sets them
        return ok

    def _indexed(self, node: Node, values: list[str]) -> list[str]:
        """RFC 5260 §6: :index n (from the end with :last) picks one field occurrence."""
        index = node.tags.get("index")
        if not isinstance(index, int):
            return values
        i = len(values) - index if "last" in node.tags else index - 1
        return [values[i]] if 0 <= i < len(values) else []

    def test_header(self, node: Node) -> bool:
        values: list[str] = []
        for name in self.strings(node.positional[0]):
            values += self._indexed(node, self.msg.headers(name))
        return self._match(node, values, self.strings(node.positional[1]))

    def _address_part(self, node: Node, address: str) -> str:
        local, at, domain = address.rpartition("@")
        if not at:
            local, domain = address, ""
        if "localpart" in node.tags:
            return local
        if "domain" in node.tags:
            return domain
        return address

    def test_address(self, node: Node) -> bool:
        values: list[str] = []
        for name in self.strings(node.positional[0]):
            for raw in self._indexed(node, self.msg.raw_headers(name)):
                values += [self._address_part(node, a) for a in self.msg.addresses(raw)]
        return self._match(node, values, self.strings(node.positional[1]))

    def test_envelope(self, node: Node) -> bool:
        values: list[str] = []
        for part in self.strings(node.positional[0]):
            part = part.lower()
            if part == "from":
                address = self.env.mail_from
            elif part == "to":
                address = self.env.rcpt_to
            else:
                continue
            # RFC 5228 §5.4: the null reverse-path matches "" with :all only.
            if address == "" and ("localpart" in node.tags or "domain" in node.tags):
                continue
            values.append(self._address_part(node, address) if address else "")
        return self._match(node, values, self.strings(node.positional[1]))

    def test_string(self, node: Node) -> bool:
        values = [v for v in self.strings(node.positional[0])]
        if Matcher.from_tags(node.tags).kind == "count":
            values = [v for v in values if v != ""]  # RFC 5229 §5: empty strings are not counted
        return self._match(node, values, self.strings(node.positional[1]))

    def test_hasflag(self, node: Node) -> bool:
        if len(node.positional) == 2:
            flags = _flag_list([self.variables.get(v.lower(), "") for v in self.strings(node.positional[0])])
            keys = self.strings(node.positional[1])
        else:
            flags = list(self.flags[""])
            keys = self.strings(node.positional[0])
        return self._match(node, flags, keys)

    def test_mailboxexists(self, node: Node) -> bool:
        return all(self.mailbox_exists(name) for name in self.strings(node.positional[0]))

    def test_body(self, node: Node) -> bool:
        mode = "raw" if "raw" in node.tags else "content" if "content" in node.tags else "text"
        values = self.msg.body(mode, self.strings(node.tags.get("content")))
        return self._match(node, values, self.strings(node.positional[0]))

    def _zone(self, node: Node) -> timezone | None:
        zone = node.tags.get("zone")
        if not isinstance(zone, str):
            return None
        m = re.fullmatch(r"([+-])(\d\d)(\d\d)", self.expand(zone))
        if m is None or int(m.group(2)) > 23 or int(m.group(3)) > 59:  # "+4133" is no offset
            raise SieveRuntimeError(f"invalid zone {zone!r}")
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))

    def test_date(self, node: Node) -> bool:
        header, part, keys = node.positional
        values: list[str] = []
        name = self.string(header)
        for raw in self._indexed(node, self.msg.raw_headers(name)):
            if name.lower() == "received":  # RFC 5260 §4.1: the date after the last ";"
                raw = raw.rpartition(";")[2]
            when = parse_date(raw)
            if when is None:
                continue
            if "originalzone" not in node.tags:
                zone = self._zone(node)
                when = when.astimezone(zone) if zone is not None else when.astimezone()
            values.append(date_part(when, self.string(part).lower()))
        return self._match(node, values, self.strings(keys))

    def test_currentdate(self, node: Node) -> bool:
        part, keys = node.positional
        zone = self._zone(node)
        when = self.now.astimezone(zone) if zone is not None else self.now.astimezone()
        return self._match(node, [date_part(when, self.string(part).lower())], self.strings(keys))


def _offset(when: datetime, colon: bool) -> str:
    off = when.utcoffset() or timedelta(0)
    minutes = int(off.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"


def date_part(when: datetime, part: str) -> str:
    """RFC 5260 §4.2 date-part values."""
    if part == "year":
        return f"{when.year:04d}"
    if part == "month":
        return f"{when.month:02d}"
    if part == "day":
        return f"{when.day:02d}"
    if part == "date":
        return when.strftime("%Y-%m-%d")
    if part == "julian":  # Modified Julian Day
        return str((when.date() - datetime(1858, 11, 17).date()).days)
    if part == "hour":
        return f"{when.hour:02d}"
    if part == "minute":
        return f"{when.minute:02d}"
    if part == "second":
        return f"{when.second:02d}"
    if part == "time":
        return when.strftime("%H:%M:%S")
    if part == "iso8601":
        return when.strftime("%Y-%m-%dT%H:%M:%S") + _offset(when, True)
    if part == "std11":
        return when.strftime("%a, %d %b %Y %H:%M:%S ") + _offset(when, False)
    if part == "zone":
        return _offset(when, False)
    if part == "weekday":
        return str((when.weekday() + 1) % 7)  # 0 is Sunday
    raise SieveRuntimeError(f"unknown date part {part}")


def evaluate(
    script: Script,
    data: bytes,
    envelope: Envelope,
    mailbox_exists: Callable[[str], bool] = lambda name: False,
    now: datetime | None = None,
) -> Outcome:
    """Run ``script`` over the message ``data``. Raises :class:`SieveRuntimeError`."""
    return Interpreter(script, MessageView(data), envelope, mailbox_exists, now).run()
