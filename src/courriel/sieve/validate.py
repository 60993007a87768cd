"""What each command and test accepts, and the check of a parsed script against it.

One table (:data:`COMMANDS`, :data:`TESTS`) says, per name, the extension it needs, its
tagged arguments and their values, and its positional arguments. Validation splits each
node's arguments into ``tags`` and ``positional``, so the interpreter reads them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from courriel.sieve.grammar import Arg, Node, SieveSyntaxError, Tag, parse

#: Extensions we implement (the ManageSieve SIEVE capability lists them).
EXTENSIONS = (
    "fileinto", "reject", "ereject", "envelope", "imap4flags", "vacation", "variables",
    "relational", "body", "copy", "mailbox", "date", "index", "comparator-i;ascii-numeric",
)  # fmt: skip
COMPARATORS = {"i;octet": None, "i;ascii-casemap": None, "i;ascii-numeric": "comparator-i;ascii-numeric"}
RELATIONS = ("gt", "ge", "lt", "le", "eq", "ne")
#: RFC 5260 §4.2 date parts.
DATE_PARTS = (
    "year", "month", "day", "date", "julian", "hour", "minute", "second", "time",
    "iso8601", "std11", "zone", "weekday",
)  # fmt: skip

# Tag value kinds: None (a bare tag), "str", "strlist", "num".
_MATCH: dict[str, str | None] = {"is": None, "contains": None, "matches": None, "comparator": "str"}
_RELATIONAL: dict[str, str | None] = {"value": "str", "count": "str"}
_ADDRESS_PART: dict[str, str | None] = {"all": None, "localpart": None, "domain": None}
_INDEX: dict[str, str | None] = {"index": "num", "last": None}
#: Tags that need an extension.
_TAG_EXTENSIONS = {
    "value": "relational", "count": "relational", "index": "index", "last": "index",
    "copy": "copy", "flags": "imap4flags", "create": "mailbox",
}  # fmt: skip
#: Mutually exclusive tag groups (RFC 5228 §2.7.1, §2.7.4).
_EXCLUSIVE = (
    ("is", "contains", "matches", "value", "count"),
    ("all", "localpart", "domain"),
    ("over", "under"),
    ("raw", "content", "text"),
    ("lower", "upper"),
    ("lowerfirst", "upperfirst"),
)


@dataclass(frozen=True)
class Spec:
    extension: str | None = None
    tags: dict[str, str | None] = field(default_factory=dict)
    #: Accepted positional layouts (kinds "str", "strlist", "num"); a str fits "strlist".
    positional: tuple[tuple[str, ...], ...] = ((),)
    tests: int = 0  # 0 none, 1 exactly one, -1 a list of one or more
    block: bool = False


def _m(*extra: dict[str, str | None]) -> dict[str, str | None]:
    out = dict(_MATCH)
    out.update(_RELATIONAL)
    for e in extra:
        out.update(e)
    return out


COMMANDS: dict[str, Spec] = {
    "require": Spec(positional=(("strlist",),)),
    "if": Spec(tests=1, block=True),
    "elsif": Spec(tests=1, block=True),
    "else": Spec(block=True),
    "stop": Spec(),
    "keep": Spec(tags={"flags": "strlist"}),
    "discard": Spec(),
    "redirect": Spec(tags={"copy": None}, positional=(("str",),)),
    "fileinto": Spec("fileinto", {"copy": None, "flags": "strlist", "create": None}, (("str",),)),
    "reject": Spec("reject", positional=(("str",),)),
    "ereject": Spec("ereject", positional=(("str",),)),
    "vacation": Spec(
        "vacation",
        {"days": "num", "subject": "str", "from": "str", "addresses": "strlist", "mime": None, "handle": "str"},
        (("str",),),
    ),
    "setflag": Spec("imap4flags", positional=(("strlist",), ("str", "strlist"))),
    "addflag": Spec("imap4flags", positional=(("strlist",), ("str", "strlist"))),
    "removeflag": Spec("imap4flags", positional=(("strlist",), ("str", "strlist"))),
    "set": Spec(
        "variables",
        {"lower": None, "upper": None, "lowerfirst": None, "upperfirst": None, "quotewildcard": None, "length": None},
        (("str", "str"),),
    ),
}

TESTS: dict[str, Spec] = {
    "address": Spec(tags=_m(_ADDRESS_PART, _INDEX), positional=(("strlist", "strlist"),)),
    "header": Spec(tags=_m(_INDEX), positional=(("strlist", "strlist"),)),
    "envelope": Spec("envelope", _m(_ADDRESS_PART), (("strlist", "strlist"),)),
    "exists": Spec(positional=(("strlist",),)),
    "size": Spec(tags={"over": "num", "under": "num"}),
    "allof": Spec(tests=-1),
    "anyof": Spec(tests=-1),
    "not": Spec(tests=1),
    "true": Spec(),
    "false": Spec(),
    "body": Spec("body", _m({"raw": None, "content": "strlist", "text": None}), (("strlist",),)),
    "string": Spec("variables", _m(), (("strlist", "strlist"),)),
    "hasflag": Spec("imap4flags", _m(), (("strlist",), ("strlist", "strlist"))),
    "mailboxexists": Spec("mailbox", positional=(("strlist",),)),
    "date": Spec("date", _m({"zone": "str", "originalzone": None}, _INDEX), (("str", "str", "strlist"),)),
    "currentdate": Spec("date", _m({"zone": "str"}), (("str", "strlist"),)),
}


def _fits(arg: Arg, kind: str) -> bool:
    if kind == "num":
        return isinstance(arg, int)
    if kind == "str":
        return isinstance(arg, str)
    return isinstance(arg, (str, list))  # strlist


def _split(node: Node, spec: Spec, required: set[str]) -> None:
    tags: dict[str, Arg | None] = {}
    positional: list[Arg] = []
    args = node.args
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not isinstance(arg, Tag):
            positional.append(arg)
            continue
        if positional:
            raise SieveSyntaxError(f"{node.name}: tag :{arg.name} after positional arguments", node.line)
        if arg.name not in spec.tags:
            raise SieveSyntaxError(f"{node.name}: unknown tag :{arg.name}", node.line)
        ext = _TAG_EXTENSIONS.get(arg.name)
        if ext is not None and ext not in required:
            raise SieveSyntaxError(f":{arg.name} needs require \"{ext}\"", node.line)
        if arg.name in tags:
            raise SieveSyntaxError(f"{node.name}: :{arg.name} given twice", node.line)
        kind = spec.tags[arg.name]
        value: Arg | None = None
        if kind is not None:
            if i >= len(args) or not _fits(args[i], kind):
                raise SieveSyntaxError(f"{node.name}: :{arg.name} needs a {kind} argument", node.line)
            value = args[i]
            i += 1
        tags[arg.name] = value
    for group in _EXCLUSIVE:
        if sum(1 for t in group if t in tags) > 1:
            raise SieveSyntaxError(f"{node.name}: only one of :{', :'.join(group)}", node.line)
    if not any(
        len(layout) == len(positional) and all(_fits(a, k) for a, k in zip(positional, layout, strict=True))
        for layout in spec.positional
    ):
        raise SieveSyntaxError(f"{node.name}: wrong arguments", node.line)
    _check_values(node, tags, required)
    node.tags = tags
    node.positional = positional


def _check_values(node: Node, tags: dict[str, Arg | None], required: set[str]) -> None:
    comparator = tags.get("comparator")
    if isinstance(comparator, str):
        if comparator.lower() not in COMPARATORS:
            raise SieveSyntaxError(f"unknown comparator {comparator}", node.line)
        ext = COMPARATORS[comparator.lower()]
        if ext is not None and ext not in required:
            raise SieveSyntaxError(f"comparator {comparator} needs require \"{ext}\"", node.line)
    for rel in ("value", "count"):
        op = tags.get(rel)
        if isinstance(op, str) and op.lower() not in RELATIONS:
            raise SieveSyntaxError(f"unknown relation {op}", node.line)
    if node.name == "size" and len(tags) != 1:
        raise SieveSyntaxError("size needs :over or :under", node.line)
    if "index" in tags and tags["index"] == 0:
        raise SieveSyntaxError(":index starts at 1", node.line)
    if "last" in tags and "index" not in tags:
        raise SieveSyntaxError(":last needs :index", node.line)


def _check(nodes: list[Node], required: set[str], top: bool) -> None:
    previous: str | None = None
    seen_other = False
    for node in nodes:
        spec = COMMANDS.get(node.name)
        if spec is None:
            hint = " (a test, not a command)" if node.name in TESTS else ""
            raise SieveSyntaxError(f"unknown command {node.name}{hint}", node.line)
        if node.name == "require":
            # RFC 5228 §3.2: require only at the start of the script.
            if not top or seen_other:
                raise SieveSyntaxError("require must come before other commands", node.line)
            _split(node, spec, required)
            names = node.positional[0]
            for ext in [names] if isinstance(names, str) else names:  # type: ignore[union-attr]
                if ext.lower() not in EXTENSIONS:
                    raise SieveSyntaxError(f"unsupported extension {ext}", node.line)
                required.add(ext.lower())
            previous = node.name
            continue
        seen_other = True
        if spec.extension is not None and spec.extension not in required:
            raise SieveSyntaxError(f"{node.name} needs require \"{spec.extension}\"", node.line)
        if node.name in ("elsif", "else") and previous not in ("if", "elsif"):
            raise SieveSyntaxError(f"{node.name} without if", node.line)
        _split(node, spec, required)
        _check_tests(node, spec, required)
        if spec.block and node.block is None:
            raise SieveSyntaxError(f"{node.name} needs a block", node.line)
        if not spec.block and node.block is not None:
            raise SieveSyntaxError(f"{node.name} takes no block", node.line)
        if node.block is not None:
            _check(node.block, required, False)
        previous = node.name


def _check_tests(node: Node, spec: Spec, required: set[str]) -> None:
    if spec.tests == 0 and node.tests:
        raise SieveSyntaxError(f"{node.name} takes no test", node.line)
    if spec.tests == 1 and len(node.tests) != 1:
        raise SieveSyntaxError(f"{node.name} needs one test", node.line)
    if spec.tests == -1 and not node.tests:
        raise SieveSyntaxError(f"{node.name} needs a list of tests", node.line)
    for test in node.tests:
        tspec = TESTS.get(test.name)
        if tspec is None:
            raise SieveSyntaxError(f"unknown test {test.name}", test.line)
        if tspec.extension is not None and tspec.extension not in required:
            raise SieveSyntaxError(f"{test.name} needs require \"{tspec.extension}\"", test.line)
        _split(test, tspec, required)
        _check_tests(test, tspec, required)
        if test.name == "date" or test.name == "currentdate":
            part = test.positional[-2]
            if isinstance(part, str) and part.lower() not in DATE_PARTS:
                raise SieveSyntaxError(f"unknown date part {part}", test.line)


@dataclass(frozen=True, slots=True)
class Script:
    commands: list[Node]
    extensions: frozenset[str]


def compile_script(text: str) -> Script:
    """Parse and validate a script. Raises :class:`SieveSyntaxError` naming the line."""
    nodes = parse(text)
    required: set[str] = set()
    _check(nodes, required, True)
    return Script(nodes, frozenset(required))
