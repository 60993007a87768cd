"""FETCH attributes and section specifications (RFC 9051 §6.4.5, RFC 3516 BINARY)."""

from __future__ import annotations

from courriel.imap.protocol.reader import ParseError, Reader
from courriel.imap.protocol.types import FetchAtt, Section

_SIMPLE = frozenset(
    {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "UID", "RFC822",
     "RFC822.HEADER", "RFC822.TEXT", "BODY",
     "MODSEQ",  # RFC 7162 §3.1.4
     "SAVEDATE",  # RFC 8514
     "EMAILID", "THREADID",  # RFC 8474 §5
     "PREVIEW"}  # RFC 8970
)  # fmt: skip
# RFC 9051 §6.4.5 macros.
MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_TEXTS = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")
MAX_PART_DEPTH = 100


def parse_section(r: Reader, binary: bool) -> tuple[Section, bytes]:
    """After "[": the section and its canonical text for the response label; consumes "]"."""
    parts: list[int] = []
    text = ""
    fields: list[str] = []
    need_text = False
    while 0x30 <= r.peek() <= 0x39:
        parts.append(r.nz_number())
        if len(parts) > MAX_PART_DEPTH:
            raise ParseError("section too deep")
        need_text = r.accept(b".")
        if not need_text:
            break
    if need_text or (not parts and r.peek() != 0x5D):
        if binary:
            raise ParseError("BINARY takes only part numbers")
        for candidate in _TEXTS:
            if r.accept(candidate.encode()):
                text = candidate
                break
        else:
            raise ParseError("invalid section")
        if text == "MIME" and not parts:
            raise ParseError("MIME needs a part number")
        if text.startswith("HEADER.FIELDS"):
            r.sp()
            r.expect(b"(")
            while True:
                fields.append(r.astring("header field name").decode("ascii", "replace"))
                if len(fields) > 1000:
                    raise ParseError("too many header fields")
                if r.accept(b")"):
                    break
                r.sp()
    r.expect(b"]")
    label = ".".join([*map(str, parts), text] if text else map(str, parts))
    if fields:
        label += " (" + " ".join(_field_label(f) for f in fields) + ")"
    return Section(tuple(parts), text, tuple(fields)), label.encode("ascii", "replace")


def _field_label(name: str) -> str:
    if name and all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
        return name.upper()
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


_NAME_CHARS = frozenset(ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")


def _att(r: Reader) -> FetchAtt:
    name = r.take(_NAME_CHARS).decode("ascii").upper()
    if not name:
        raise ParseError("expected a fetch attribute")
    if r.peek() != 0x5B:  # "["
        if name == "PREVIEW" and r.accept(b" ("):  # RFC 8970 §3: PREVIEW (LAZY)
            r.expect(b"LAZY", "LAZY")
            r.expect(b")")
        if name in _SIMPLE:
            return FetchAtt(name, label=name.encode())
        raise ParseError(f"unknown fetch attribute {name}")
    if name not in ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        raise ParseError(f"{name} takes no section")
    r.expect(b"[")
    binary = name.startswith("BINARY")
    section, spec = parse_section(r, binary)
    if name == "BINARY.SIZE" and r.peek() == 0x3C:
        raise ParseError("BINARY.SIZE takes no partial")
    partial = None
    if r.accept(b"<"):
        if name == "BINARY.SIZE":
            raise ParseError("BINARY.SIZE takes no partial")
        origin = r.number()
        r.expect(b".")
        count = r.nz_number()
        r.expect(b">")
        partial = (origin, count)
    base = name.removesuffix(".PEEK")
    label = base.encode() + b"[" + spec + b"]"
    if partial is not None:
        label += b"<%d>" % partial[0]
    return FetchAtt(base + "[]", section, partial, peek=name.endswith(".PEEK"), label=label)


def parse_fetch_atts(r: Reader) -> tuple[tuple[FetchAtt, ...], bool]:
    """A macro, one attribute, or a parenthesised list; returns (attributes, was_macro)."""
    if r.accept(b"("):
        atts = [_att(r)]
        while not r.accept(b")"):
            r.sp()
            atts.append(_att(r))
            if len(atts) > 100:
                raise ParseError("too many fetch attributes")
        return tuple(atts), False
    save = r.pos
    word = r.take(_NAME_CHARS).decode("ascii").upper()
    if word in MACROS:
        return tuple(FetchAtt(n, label=n.encode()) for n in MACROS[word]), True
    r.pos = save
    return (_att(r),), False
