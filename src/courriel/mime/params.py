"""Content-Type and Content-Disposition values: type tokens and parameters.

RFC 2045 §5.1 gives the syntax, RFC 2231 the continuations (``name*0``, ``name*1``)
and charset-tagged values (``name*=charset'lang'%XX``). Reading is lenient: missing
quotes, unquoted spaces, duplicated parameters and junk are tolerated and reported.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from .charset import decode_bytes, surrogates_to_text
from .headers import decode_header_value, unfold

Params = list[tuple[str, str]]

_TOKEN_END = frozenset(' \t\r\n;=()<>@,:\\"/[]?')
_SECTION = re.compile(r"^(.*?)\*(\d{1,4})(\*?)$")


def _skip_cfws(s: str, i: int) -> int:
    n = len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            depth = 0
            while i < n:
                if s[i] == "\\":
                    i += 2
                    continue
                if s[i] == "(":
                    depth += 1
                elif s[i] == ")":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
        else:
            break
    return i


def _token(s: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(s) and s[j] not in _TOKEN_END:
        j += 1
    return s[i:j], j


def _quoted(s: str, i: int) -> tuple[str, int]:
    """Read a quoted-string starting at s[i] == '"'; returns the unquoted value."""
    buf: list[str] = []
    j = i + 1
    n = len(s)
    while j < n and s[j] != '"':
        if s[j] == "\\" and j + 1 < n:
            j += 1
        buf.append(s[j])
        j += 1
    return "".join(buf), j + 1


def _raw_params(s: str, i: int, defects: list[str]) -> Params:
    """The ``; name=value`` list from s[i:], values unquoted, names as written."""
    out: Params = []
    n = len(s)
    while i < n:
        i = _skip_cfws(s, i)
        if i >= n:
            break
        if s[i] == ";":
            i += 1
            continue
        name, j = _token(s, i)
        j = _skip_cfws(s, j)
        if not name or j >= n or s[j] != "=":
            # Junk: skip to the next ";".
            defects.append(f"invalid parameter near {s[i : i + 20]!r}")
            k = s.find(";", max(j, i + 1))
            i = n if k < 0 else k + 1
            continue
        j = _skip_cfws(s, j + 1)
        if j < n and s[j] == '"':
            value, j = _quoted(s, j)
        else:
            # Lenient: an unquoted value runs to ";" (spaces kept: name=my file.pdf).
            k = s.find(";", j)
            k = n if k < 0 else k
            value = s[j:k].strip()
            paren = value.find(" (")
            if paren >= 0:  # trailing comment after a token value
                value = value[:paren].rstrip()
            j = k
        out.append((name, value))
        i = j
    return out


def _merge(raw: Params, defects: list[str]) -> tuple[Params, Params]:
    """Merge RFC 2231 sections; returns (decoded params, IMAP params)."""
    # name -> {section index -> (value, extended)}; order of first appearance kept.
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    written: dict[str, str] = {}
    plain: dict[str, str] = {}
    extended_whole: dict[str, str] = {}
    order: list[str] = []
    imap: Params = []
    for name, value in raw:
        m = _SECTION.match(name)
        if m:
            base = m.group(1)
            key = base.lower()
            if key not in sections:
                sections[key] = {}
                written[key] = base
                if key not in plain and key not in extended_whole:
                    order.append(key)
            sections[key].setdefault(int(m.group(2)), (value, bool(m.group(3))))
            continue
        if name.endswith("*"):
            key = name[:-1].lower()
            if key in extended_whole:
                defects.append(f"duplicate parameter {name!r}")
                continue
            extended_whole[key] = value
            written.setdefault(key, name[:-1])
        else:
            key = name.lower()
            if key in plain:
                defects.append(f"duplicate parameter {name!r}")
                continue
            plain[key] = value
        if key not in order and key not in sections:
            order.append(key)
        imap.append((name, value))
    # Continuations merged for IMAP: extended if any section is.
    for key, secs in sections.items():
        joined: list[str] = []
        ext = any(e for _v, e in secs.values())
        for expected, idx in enumerate(sorted(secs)):
            if idx != expected:
                defects.append(f"parameter {written[key]!r} section {expected} missing")
                break
            value, is_ext = secs[idx]
            if ext and not is_ext:
                value = "".join(
                    c if (c.isascii() and c.isalnum()) or c in "-._~" else _pct(c) for c in value
                )
            joined.append(value)
        if ext:
            extended_whole.setdefault(key, "".join(joined))
            imap.append((written[key] + "*", "".join(joined)))
        else:
            plain.setdefault(key, "".join(joined))
            imap.append((written[key], "".join(joined)))
    decoded: Params = []
    for key in order:
        if key in extended_whole:
            value = _decode_extended(extended_whole[key])
        else:
            value = plain[key]
            value = decode_header_value(value) if "=?" in value else surrogates_to_text(value)
        # Names are ASCII tokens (RFC 2045 §5.1); 8-bit junk in one must not leave lone
        # surrogates in the decoded (JMAP, JSON) form.
        decoded.append((surrogates_to_text(key), value))
    return decoded, imap


def _pct(c: str) -> str:
    return "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))


def _decode_extended(value: str) -> str:
    """RFC 2231 §4: charset'language'percent-encoded octets."""
    charset: str | None = None
    parts = value.split("'", 2)
    if len(parts) == 3:
        charset, _lang, text = parts
    else:
        text = value
    raw = unquote_to_bytes(text.encode("utf-8", "surrogateescape"))
    return decode_bytes(raw, charset or None)


def parse_content_type(
    raw: str | None, defects: list[str]
) -> tuple[str, str, Params, Params] | None:
    """(type, subtype, decoded params, IMAP params), or None when absent or invalid."""
    if raw is None:
        return None
    s = unfold(raw)
    i = _skip_cfws(s, 0)
    main, i = _token(s, i)
    i = _skip_cfws(s, i)
    if not main or i >= len(s) or s[i] != "/":
        defects.append(f"invalid Content-Type {s[:60]!r}")
        return None
    i = _skip_cfws(s, i + 1)
    sub, i = _token(s, i)
    if not sub:
        defects.append(f"invalid Content-Type {s[:60]!r}")
        return None
    params, imap = _merge(_raw_params(s, i, defects), defects)
    return main, sub, params, imap


def parse_disposition(raw: str | None, defects: list[str]) -> tuple[str, Params, Params] | None:
    """(disposition type, decoded params, IMAP params) of Content-Disposition (RFC 2183)."""
    if raw is None:
        return None
    s = unfold(raw)
    i = _skip_cfws(s, 0)
    kind, i = _token(s, i)
    if not kind:
        defects.append(f"invalid Content-Disposition {s[:60]!r}")
        return None
    params, imap = _merge(_raw_params(s, i, defects), defects)
    return kind, params, imap


def first_token(raw: str | None) -> str | None:
    """The first token of a simple structured value (Content-Transfer-Encoding)."""
    if raw is None:
        return None
    s = unfold(raw)
    tok, _ = _token(s, _skip_cfws(s, 0))
    return tok or None
