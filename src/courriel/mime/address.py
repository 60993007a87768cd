"""RFC 5322 §3.4 address lists, read leniently into IMAP ENVELOPE address tuples.

Invariants:
- Group syntax follows RFC 9051 §7.5.2: a group start is (None, None, group name, None),
  its end is (None, None, None, None).
- A mailbox never has host None (that would read as a group marker): a missing domain
  gives host "".
- Display names stay raw (encoded words kept) in the IMAP tuples; ``parse_addresses``
  decodes them.
"""

from __future__ import annotations

from .charset import surrogates_to_text
from .headers import decode_header_value, unfold
from .structure import Address

# Token kinds.
_ATOM = 0
_QUOTED = 1
_COMMENT = 2
_LITERAL = 3
_SPECIAL = 4

_SPECIALS = frozenset("<>:;@,.")
_STOP = frozenset('()<>[]:;@,."\\ \t\r\n')

Token = tuple[int, str, str]  # (kind, original text, value)


def tokenize(text: str) -> list[Token]:
    """Split a structured header value into atoms, quoted strings, comments, domain
    literals and specials. Unterminated quotes, comments and literals end at the end."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':
            j = i + 1
            buf: list[str] = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            tokens.append((_QUOTED, text[i : j + 1], "".join(buf)))
            i = j + 1
        elif c == "(":
            depth = 0
            j = i
            buf = []
            while j < n:
                ch = text[j]
                if ch == "\\" and j + 1 < n:
                    buf.append(text[j + 1])
                    j += 2
                    continue
                if ch == "(":
                    depth += 1
                    if depth > 1:
                        buf.append(ch)
                elif ch == ")":
                    depth -= 1
                    if depth == 0:
                        break
                    buf.append(ch)
                else:
                    buf.append(ch)
                j += 1
            tokens.append((_COMMENT, text[i : j + 1], "".join(buf).strip()))
            i = j + 1
        elif c == "[":
            j = text.find("]", i)
            j = n - 1 if j < 0 else j
            tokens.append((_LITERAL, text[i : j + 1], text[i : j + 1]))
            i = j + 1
        elif c in _SPECIALS:
            tokens.append((_SPECIAL, c, c))
            i += 1
        elif c in "]\\)":  # stray closer or backslash: keep as part of an atom
            tokens.append((_ATOM, c, c))
            i += 1
        else:
            j = i
            while j < n and text[j] not in _STOP:
                j += 1
            tokens.append((_ATOM, text[i:j], text[i:j]))
            i = j
    return tokens


def _phrase(tokens: list[Token]) -> str | None:
    """A display name: words joined by one space, quoted strings unquoted (RFC 5322 §3.2.5)."""
    words: list[str] = []
    for kind, orig, value in tokens:
        if kind == _COMMENT:
            continue
        if kind == _SPECIAL and value == "." and words:
            words[-1] += "."  # obs-phrase allows "." (RFC 5322 §4.1)
            continue
        words.append(value if kind != _SPECIAL else orig)
    name = " ".join(words).strip(" \t")
    return name or None


def _first_comment(tokens: list[Token]) -> str | None:
    for kind, _orig, value in tokens:
        if kind == _COMMENT and value:
            return value
    return None


def _addr_spec(tokens: list[Token]) -> tuple[str, str]:
    """(local-part, domain) from the tokens of an addr-spec; the last "@" splits them."""
    parts = [t for t in tokens if t[0] != _COMMENT]
    at = -1
    for i, t in enumerate(parts):
        if t[0] == _SPECIAL and t[1] == "@":
            at = i
    if at < 0:
        return "".join(t[1] for t in parts), ""
    local = "".join(t[1] for t in parts[:at])
    domain = "".join(t[1] for t in parts[at + 1 :])
    return local, domain


def _mailbox(tokens: list[Token]) -> Address | None:
    """One mailbox (name-addr or addr-spec) from its tokens, or None when empty."""
    if not any(t[0] != _COMMENT for t in tokens):
        return None
    lt = next((i for i, t in enumerate(tokens) if t[0] == _SPECIAL and t[1] == "<"), -1)
    if lt >= 0:
        gt = next(
            (
                i
                for i in range(lt + 1, len(tokens))
                if tokens[i][0] == _SPECIAL and tokens[i][1] == ">"
            ),
            len(tokens),
        )
        name = _phrase(tokens[:lt])
        inner = tokens[lt + 1 : gt]
        adl: str | None = None
        # obs-route (RFC 5322 §4.4): "@a,@b:" before the addr-spec.
        if inner and inner[0][0] == _SPECIAL and inner[0][1] == "@":
            colon = next((i for i, t in enumerate(inner) if t[0] == _SPECIAL and t[1] == ":"), -1)
            if colon >= 0:
                adl = "".join(t[1] for t in inner[:colon] if t[0] != _COMMENT) or None
                inner = inner[colon + 1 :]
        if name is None:
            name = _first_comment(tokens[gt + 1 :])
        local, domain = _addr_spec(inner)
        return Address(name, adl, local, domain)
    has_at = any(t[0] == _SPECIAL and t[1] == "@" for t in tokens)
    words = [t for t in tokens if t[0] in (_ATOM, _QUOTED)]
    if not has_at and len(words) > 1:
        # Only a display name ("John Smith"): keep it as the name, no address.
        return Address(_phrase(tokens), None, "", "")
    local, domain = _addr_spec(tokens)
    return Address(_first_comment(tokens), None, local, domain)


def parse_address_list(raw: str | None) -> list[Address]:
    """An address-list header value (raw) as IMAP ENVELOPE address tuples, groups marked."""
    if raw is None:
        return []
    tokens = tokenize(unfold(raw))
    out: list[Address] = []
    segment: list[Token] = []
    in_group = False
    angle = False
    for tok in tokens:
        kind, orig, _value = tok
        if kind == _SPECIAL:
            if orig == "<":
                angle = True
            elif orig == ">":
                angle = False
            elif not angle and orig == ",":
                _flush(segment, out)
                segment = []
                continue
            elif not angle and orig == ":" and not in_group:
                # RFC 5322 §3.4: group = display-name ":" [group-list] ";"
                out.append(Address(None, None, _phrase(segment) or "", None))
                segment = []
                in_group = True
                continue
            elif not angle and orig == ";":
                _flush(segment, out)
                segment = []
                if in_group:
                    out.append(Address(None, None, None, None))
                    in_group = False
                continue
        segment.append(tok)
    _flush(segment, out)
    if in_group:  # missing ";" at the end of a group
        out.append(Address(None, None, None, None))
    return out


def _flush(segment: list[Token], out: list[Address]) -> None:
    if segment:
        addr = _mailbox(segment)
        if addr is not None:
            out.append(addr)


def addr_spec(addr: Address) -> str:
    """The addr-spec of a mailbox tuple: local@domain, or just local without a domain."""
    mailbox = addr.mailbox or ""
    return f"{mailbox}@{addr.host}" if addr.host else mailbox


def parse_addresses(raw: str | None) -> list[tuple[str, str]]:
    """(decoded display name, addr-spec) for each mailbox of an address-list; groups are
    flattened to their members. Raw 8-bit and RFC 2047 names are decoded."""
    out: list[tuple[str, str]] = []
    for a in parse_address_list(raw):
        if a.host is None:  # group markers
            continue
        name = decode_header_value(a.name) if a.name else ""
        out.append((name, surrogates_to_text(addr_spec(a))))
    return out
