"""The Sieve grammar (RFC 5228 §8): a pure lexer and parser, text in, a tree of nodes out.

Commands and tests share one shape (RFC 5228 §8.3): an identifier, arguments (tags, numbers,
strings, string lists), then tests, then a block or ";". What each name accepts is checked
later, by :mod:`courriel.sieve.validate`; here only the syntax is. Every error names the
line. Bounds (script size, nesting, list length) keep a hostile script from costing much.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Deepest nesting of blocks and tests accepted.
MAX_NESTING = 32
#: Longest script, in characters (ManageSieve also bounds it in octets).
MAX_SCRIPT = 1024 * 1024
_QUANTIFIERS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
#: RFC 5228 §2.4.1: numbers are at least 31-bit unsigned; bigger is an error here.
MAX_NUMBER = (1 << 63) - 1


class SieveSyntaxError(ValueError):
    """A script that does not parse or validate; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.text = message


@dataclass(frozen=True, slots=True)
class Tag:
    """A tagged argument, ``:name``, name lower-cased without the colon."""

    name: str


#: An argument: a tag, a number, a string or a string list.
Arg = Tag | int | str | list[str]


@dataclass(slots=True)
class Node:
    """A command (with ``block`` when it has one) or a test."""

    name: str  # lower-cased identifier
    args: list[Arg]
    tests: list[Node]
    block: list[Node] | None
    line: int
    # Filled in by validation: tagged arguments by name (value None for a bare tag) and the
    # positional arguments in order.
    tags: dict[str, Arg | None] = field(default_factory=dict)
    positional: list[Arg] = field(default_factory=list)


# --- lexer --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # ident, tag, number, string, punct
    value: str | int
    line: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_SCRIPT:
        raise SieveSyntaxError("script too large", 1)
    out: list[Token] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#":  # hash-comment to the end of the line
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):  # bracket-comment, not nested
            j = text.find("*/", i + 2)
            if j < 0:
                raise SieveSyntaxError("unterminated comment", line)
            line += text.count("\n", i, j)
            i = j + 2
        elif c in "[](){};,":
            out.append(Token("punct", c, line))
            i += 1
        elif c == '"':
            value, i, end_line = _quoted(text, i + 1, line)
            out.append(Token("string", value, line))
            line = end_line
        elif c == ":":
            j = _ident_end(text, i + 1)
            if j == i + 1:
                raise SieveSyntaxError("':' without a tag name", line)
            out.append(Token("tag", text[i + 1 : j].lower(), line))
            i = j
        elif "0" <= c <= "9":
            j = i
            while j < n and "0" <= text[j] <= "9":
                j += 1
            if j - i > 20:
                raise SieveSyntaxError("number too large", line)
            number = int(text[i:j])
            if j < n and text[j].lower() in _QUANTIFIERS:
                number *= _QUANTIFIERS[text[j].lower()]
                j += 1
            if number > MAX_NUMBER:
                raise SieveSyntaxError("number too large", line)
            out.append(Token("number", number, line))
            i = j
        elif c.isascii() and (c.isalpha() or c == "_"):
            j = _ident_end(text, i)
            word = text[i:j].lower()
            if word == "text" and j < n and text[j] == ":":
                value, i, end_line = _multiline(text, j + 1, line)
                out.append(Token("string", value, line))
                line = end_line
                continue
            out.append(Token("ident", word, line))
            i = j
        else:
            raise SieveSyntaxError(f"unexpected character {c!r}", line)
    return out


def _ident_end(text: str, i: int) -> int:
    # RFC 5228 §8.1: identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_"); ASCII only.
    n = len(text)
    if i < n and (text[i].isascii() and (text[i].isalpha() or text[i] == "_")):
        i += 1
        while i < n and text[i].isascii() and (text[i].isalnum() or text[i] == "_"):
            i += 1
    return i


def _quoted(text: str, i: int, line: int) -> tuple[str, int, int]:
    """RFC 5228 §2.4.2: backslash escapes the next character (only \\\\ and \\" are meaningful)."""
    out: list[str] = []
    n = len(text)
    start_line = line
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1, line
        if c == "\\" and i + 1 < n:
            c = text[i + 1]
            i += 1
        if c == "\n":
            line += 1
        out.append(c)
        i += 1
    raise SieveSyntaxError("unterminated string", start_line)


def _multiline(text: str, i: int, line: int) -> tuple[str, int, int]:
    """RFC 5228 §8.1: ``text:`` [comment] CRLF, lines, then "." CRLF; a leading ".." is "."."""
    n = len(text)
    start_line = line
    while i < n and text[i] in " \t":
        i += 1
    if text.startswith("#", i):
        i = text.find("\n", i)
        i = n if i < 0 else i
    if text.startswith("\r\n", i):
        i += 2
    elif text.startswith("\n", i):
        i += 1
    else:
        raise SieveSyntaxError("text: must end its line", line)
    line += 1
    out: list[str] = []
    while i < n:
        j = text.find("\n", i)
        raw = text[i:] if j < 0 else text[i:j]
        body = raw[:-1] if raw.endswith("\r") else raw
        if body == ".":
            return "".join(out), (n if j < 0 else j + 1), line + 1
        if body.startswith(".."):
            body = body[1:]
        out.append(body + "\r\n")
        line += 1
        if j < 0:
            break
        i = j + 1
    raise SieveSyntaxError("unterminated multi-line string", start_line)


# --- parser -------------------------------------------------------------------------------
class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1].line if self.tokens else 1
            raise SieveSyntaxError("unexpected end of script", last)
        self.pos += 1
        return tok

    def is_punct(self, c: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.value == c

    def expect(self, c: str) -> Token:
        tok = self.take()
        if tok.kind != "punct" or tok.value != c:
            raise SieveSyntaxError(f"expected {c!r}, found {tok.value!r}", tok.line)
        return tok

    def commands(self, depth: int) -> list[Node]:
        out: list[Node] = []
        while self.peek() is not None and not self.is_punct("}"):
            out.append(self.command(depth))
        return out

    def command(self, depth: int) -> Node:
        tok = self.take()
        if tok.kind != "ident":
            raise SieveSyntaxError(f"expected a command, found {tok.value!r}", tok.line)
        args, tests = self.arguments(depth)
        block: list[Node] | None = None
        if self.is_punct("{"):
            if depth >= MAX_NESTING:
                raise SieveSyntaxError("blocks nested too deeply", tok.line)
            self.take()
            block = self.commands(depth + 1)
            self.expect("}")
        else:
            self.expect(";")
        return Node(str(tok.value), args, tests, block, tok.line)

    def arguments(self, depth: int) -> tuple[list[Arg], list[Node]]:
        args: list[Arg] = []
        while True:
            tok = self.peek()
            if tok is None:
                break
            if tok.kind == "tag":
                args.append(Tag(str(tok.value)))
            elif tok.kind == "number":
                assert isinstance(tok.value, int)
                args.append(tok.value)
            elif tok.kind == "string":
                args.append(str(tok.value))
            elif tok.kind == "punct" and tok.value == "[":
                self.take()
                args.append(self.string_list())
                continue
            else:
                break
            self.take()
        tests: list[Node] = []
        tok = self.peek()
        if tok is not None and tok.kind == "ident":
            tests.append(self.test(depth + 1))
        elif tok is not None and tok.kind == "punct" and tok.value == "(":
            self.take()
            tests.append(self.test(depth + 1))
            while self.is_punct(","):
                self.take()
                tests.append(self.test(depth + 1))
            self.expect(")")
        return args, tests

    def string_list(self) -> list[str]:
        out: list[str] = []
        while True:
            tok = self.take()
            if tok.kind != "string":
                raise SieveSyntaxError(f"expected a string in a list, found {tok.value!r}", tok.line)
            out.append(str(tok.value))
            close = self.take()
            if close.kind == "punct" and close.value == "]":
                return out
            if close.kind != "punct" or close.value != ",":
                raise SieveSyntaxError(f"expected ',' or ']', found {close.value!r}", close.line)

    def test(self, depth: int) -> Node:
        tok = self.take()
        if tok.kind != "ident":
            raise SieveSyntaxError(f"expected a test, found {tok.value!r}", tok.line)
        if depth >= MAX_NESTING:
            raise SieveSyntaxError("tests nested too deeply", tok.line)
        args, tests = self.arguments(depth)
        return Node(str(tok.value), args, tests, None, tok.line)


def parse(text: str) -> list[Node]:
    """The commands of a script (syntax only). Raises :class:`SieveSyntaxError`."""
    parser = _Parser(tokenize(text))
    nodes = parser.commands(0)
    tok = parser.peek()
    if tok is not None:
        raise SieveSyntaxError(f"unexpected {tok.value!r}", tok.line)
    return nodes
