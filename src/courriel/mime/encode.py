"""Writing header values: RFC 2047 encoded words, phrases, addresses, RFC 2231 parameters,
and folding at 78 columns (RFC 5322 §2.1.1, §2.2.3).

Invariants: every value written here reads back, through ``courriel.mime.parse``, as the
exact Unicode text given; folding only inserts CRLF before an existing space.
"""

from __future__ import annotations

import base64
import re
import string

from .charset import codec_name, is_ascii_compatible, mime_name

LINE = 78  # RFC 5322 §2.1.1: SHOULD be no more than 78 characters
_WORD_MAX = 75  # RFC 2047 §2: an encoded-word is at most 75 characters

# RFC 2047 §5(3): in a phrase, Q-encoded text may only hold these characters literally.
_Q_SAFE = frozenset((string.ascii_letters + string.digits + "!*+-/").encode("ascii"))
# RFC 5322 §3.2.3 atext
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
# RFC 2231 §7 attribute-char: token characters except "*", "'", "%"
_ATTR_CHAR = frozenset((string.ascii_letters + string.digits + "!#$&+-.^_`|~").encode("ascii"))
_FOLD_POINT = re.compile(r"(?<=[^ \t]) (?=[^ \t])")


def header_charset(text: str, charset: str) -> str:
    """The charset for encoded words: the requested one when it can encode ``text``
    (and is ASCII-compatible), else UTF-8."""
    name = codec_name(charset)
    if name is None or name == "utf-8" or not is_ascii_compatible(name):
        return "utf-8"
    try:
        if text.encode(name).decode(name) == text:
            return mime_name(charset)
    except (UnicodeError, LookupError):
        pass
    return "utf-8"


def _q(raw: bytes) -> str:
    return "".join(chr(b) if b in _Q_SAFE else ("_" if b == 0x20 else f"={b:02X}") for b in raw)


def _q_len(raw: bytes) -> int:
    return sum(1 if (b in _Q_SAFE or b == 0x20) else 3 for b in raw)


def encode_words(text: str, charset: str = "utf-8", limit: int = _WORD_MAX) -> list[str]:
    """RFC 2047 encoded words for ``text``, each at most ``limit`` characters, never
    splitting a character. Q when shorter than B (Latin scripts), else B."""
    cs = header_charset(text, charset)
    codec = codec_name(cs) or "utf-8"
    whole = text.encode(codec)
    use_q = codec != "iso2022_jp" and _q_len(whole) <= 4 * ((len(whole) + 2) // 3)
    room = max(limit, 20) - len(cs) - 7

    def size(chunk: str) -> int:
        raw = chunk.encode(codec)
        return _q_len(raw) if use_q else 4 * ((len(raw) + 2) // 3)

    def word(chunk: str) -> str:
        raw = chunk.encode(codec)
        if use_q:
            return f"=?{cs}?Q?{_q(raw)}?="
        return f"=?{cs}?B?{base64.b64encode(raw).decode('ascii')}?="

    words: list[str] = []
    chunk = ""
    for ch in text:
        if chunk and size(chunk + ch) > room:
            words.append(word(chunk))
            chunk = ch
        else:
            chunk += ch
    if chunk or not words:
        words.append(word(chunk))
    return words


def printable(text: str, utf8: bool) -> bool:
    """No control characters; non-ASCII only when raw UTF-8 headers are allowed."""
    for ch in text:
        o = ord(ch)
        if o < 0x20 or o == 0x7F or (o > 0x7F and (not utf8 or 0x80 <= o < 0xA0)):
            return False
        if 0xD800 <= o < 0xE000:
            return False
    return True


def _plain_word(word: str, utf8: bool) -> bool:
    return 0 < len(word) <= LINE - 2 and "=?" not in word and printable(word, utf8)


def encode_unstructured(
    text: str, charset: str = "utf-8", *, utf8: bool = False, limit: int = _WORD_MAX
) -> str:
    """An unstructured value (Subject, RFC 5322 §3.2.5): plain words stay plain, runs of
    words that need it become encoded words. With ``utf8`` (RFC 6532) UTF-8 stays raw."""
    words = text.split(" ")
    if any(not w for w in words):  # leading, trailing or repeated spaces: encode all
        return " ".join(encode_words(text, charset, limit)) if text else ""
    out: list[str] = []
    run: list[str] = []
    for w in words:
        if _plain_word(w, utf8):
            if run:
                out.extend(encode_words(" ".join(run), charset, limit))
                run = []
            out.append(w)
        else:
            run.append(w)
    if run:
        out.extend(encode_words(" ".join(run), charset, limit))
    return " ".join(out)


def _is_atom_phrase(name: str, utf8: bool) -> bool:
    words = name.split(" ")
    for w in words:
        if not w or "=?" in w:
            return False
        for ch in w:
            if ch not in _ATEXT and not (utf8 and ord(ch) > 0x9F and printable(ch, True)):
                return False
    return True


def encode_phrase(
    name: str, charset: str = "utf-8", *, utf8: bool = False, limit: int = _WORD_MAX
) -> str:
    """A display name (RFC 5322 §3.2.5 phrase): atoms, else a quoted-string, else
    RFC 2047 encoded words (used for non-ASCII, controls, or edge whitespace)."""
    if any(len(w) > LINE - 2 for w in name.split(" ")):
        return " ".join(encode_words(name, charset, limit))  # keeps lines foldable
    if _is_atom_phrase(name, utf8):
        return name
    if printable(name, utf8) and "=?" not in name and name == name.strip(" ") and "\t" not in name:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return " ".join(encode_words(name, charset, limit))


_DOT_ATOM = re.compile(
    r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\U0010ffff]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\U0010ffff]+)*"
)
_QUOTED = re.compile(r'"(?:[^"\\\r\n]|\\.)*"')


def encode_addr_spec(addr: str, *, utf8: bool = False) -> str:
    """An addr-spec with the local part quoted when needed and the domain in IDNA
    A-labels unless raw UTF-8 headers are allowed. Raises ValueError when impossible."""
    local, at, domain = addr.strip().rpartition("@")
    if not at:
        local, domain = domain, ""
    if not utf8 and not local.isascii():
        raise ValueError(f"non-ASCII local part needs SMTPUTF8: {addr!r}")
    if not (_DOT_ATOM.fullmatch(local) or _QUOTED.fullmatch(local)):
        if not printable(local, utf8):
            raise ValueError(f"control characters in address {addr!r}")
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if domain and not utf8 and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid domain in {addr!r}") from exc
    return f"{local}@{domain}" if domain else local


def encode_mailbox(
    name: str, addr: str, charset: str = "utf-8", *, utf8: bool = False, limit: int = _WORD_MAX
) -> str:
    """``Name <local@domain>`` or just ``local@domain`` when there is no name."""
    spec = encode_addr_spec(addr, utf8=utf8)
    if not name:
        return spec
    return f"{encode_phrase(name, charset, utf8=utf8, limit=limit)} <{spec}>"


def fold(name: str, value: str, width: int = LINE) -> str:
    """``name: value`` plus CRLF, folded before single spaces so that lines stay within
    ``width`` where the words allow. Unfolding gives back ``name: value`` exactly."""
    line = f"{name}: {value}" if value else f"{name}:"
    if len(line) <= width:
        return line + "\r\n"
    cuts = [m.start() for m in _FOLD_POINT.finditer(line, len(name) + 2)]
    pieces: list[str] = []
    prev = 0
    for c in cuts:
        pieces.append(line[prev:c])
        prev = c
    pieces.append(line[prev:])
    out: list[str] = []
    cur = pieces[0]
    for p in pieces[1:]:
        if len(cur) + len(p) > width:
            out.append(cur)
            cur = p
        else:
            cur += p
    out.append(cur)
    return "\r\n".join(out) + "\r\n"


def _pct(raw: bytes) -> str:
    return "".join(chr(b) if b in _ATTR_CHAR else f"%{b:02X}" for b in raw)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_param(name: str, value: str, *, utf8: bool = False, section: int = 40) -> list[str]:
    """A parameter as one or more ``name=value`` items (RFC 2045 §5.1, RFC 2231):
    quoted when printable ASCII (or UTF-8 allowed), else ``name*=utf-8''%XX`` split
    into ``name*0*``, ``name*1*``... sections when long."""
    if printable(value, utf8) and "=?" not in value:
        if len(value) <= 2 * section:
            return [f"{name}={_quote(value)}"]
        chunks = [value[i : i + section] for i in range(0, len(value), section)]
        return [f"{name}*{i}={_quote(c)}" for i, c in enumerate(chunks)]
    encoded: list[str] = []
    cur = ""
    for ch in value:  # never split a character's octets across sections
        piece = _pct(ch.encode("utf-8"))
        if cur and len(cur) + len(piece) > section:
            encoded.append(cur)
            cur = piece
        else:
            cur += piece
    encoded.append(cur)
    if len(encoded) == 1:
        return [f"{name}*=utf-8''{encoded[0]}"]
    first = f"{name}*0*=utf-8''{encoded[0]}"
    return [first] + [f"{name}*{i}*={c}" for i, c in enumerate(encoded[1:], 1)]


def encode_name_param(value: str, *, utf8: bool = False) -> list[str]:
    """The Content-Type ``name`` parameter, for readers that look there rather than at
    Content-Disposition: quoted when printable ASCII, else RFC 2231 like ``filename``.
    (RFC 2047 words inside the quoted string, as some agents write, are not standard and
    are reported as defects by conforming parsers, so we do not write them.)"""
    return encode_param("name", value, utf8=utf8)
