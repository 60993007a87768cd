"""BODY[section] and BINARY[section] contents as slices of the stored message (RFC 9051
§6.4.5, RFC 3516): the body structure stored at delivery carries every part's offsets, so
nothing is parsed again here except the header lines HEADER.FIELDS selects."""

from __future__ import annotations

from courriel.imap.protocol.types import Section
from courriel.mime.content import transfer_decode
from courriel.mime.structure import BodyPart

_IDENTITY = frozenset({"7bit", "8bit", "binary", ""})
KNOWN_ENCODINGS = _IDENTITY | {"base64", "quoted-printable"}


class UnknownEncoding(ValueError):
    """BINARY of a part whose Content-Transfer-Encoding we cannot undo (RFC 3516 UNKNOWN-CTE)."""


def header_lines(block: bytes) -> list[tuple[bytes, bytes]]:
    """Split a header block into (lower-case name, raw field with folding and line end)."""
    fields: list[tuple[bytes, bytes]] = []
    pos = 0
    n = len(block)
    while pos < n:
        end = block.find(b"\n", pos)
        end = n if end < 0 else end + 1
        line = block[pos:end]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + line)
        else:
            colon = line.find(b":")
            name = line[:colon].strip().lower() if colon > 0 else b""
            fields.append((name, line))
        pos = end
    return fields


def select_fields(block: bytes, names: tuple[str, ...], exclude: bool) -> bytes:
    """HEADER.FIELDS / HEADER.FIELDS.NOT: the chosen fields and the blank line after them."""
    wanted = {n.lower().encode("ascii", "replace") for n in names}
    kept = [raw for name, raw in header_lines(block) if (name in wanted) != exclude and name]
    out = b"".join(kept)
    if out and not out.endswith(b"\n"):
        out += b"\r\n"
    return out + b"\r\n"


def body_section(data: bytes, root: BodyPart, section: Section) -> bytes | None:
    """The octets of BODY[section], or None when the part does not exist."""
    part: BodyPart | None = root.part_at(section.part) if section.part else root
    if part is None:
        return None
    # HEADER and TEXT of a numbered part need a message/rfc822 part
    msg = part.message if section.part else root
    text = section.text
    if text == "":
        if not section.part:
            return data
        return data[part.body_start : part.end]
    if text == "MIME":
        return data[part.header_start : part.body_start]
    if msg is None:
        return None
    if text == "TEXT":
        return data[msg.body_start : msg.end]
    header = data[msg.header_start : msg.body_start]
    if text == "HEADER":
        return header
    return select_fields(header, section.fields, exclude=text == "HEADER.FIELDS.NOT")


def binary_section(data: bytes, root: BodyPart, section: Section) -> bytes | None:
    """BINARY[part]: the part's content with its transfer encoding undone (RFC 3516 §4.2)."""
    if not section.part:
        return data
    part = root.part_at(section.part)
    if part is None:
        return None
    body = data[part.body_start : part.end]
    if part.children or part.message is not None:
        return body
    enc = part.encoding.lower()
    if enc not in KNOWN_ENCODINGS:
        raise UnknownEncoding(part.encoding)
    return body if enc in _IDENTITY else transfer_decode(body, enc)
