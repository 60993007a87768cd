"""Reading a fetched message: headers, the text to show, the attachment list and data.

Built on ``courriel.mime.parse_message`` (never raises) and the RFC 8621 §4.1.4 body
lists: the text body is the text/plain parts, else the HTML parts rendered as text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from courriel.mime import (
    BodyPart,
    ParsedMessage,
    body_lists,
    decode_part,
    html_to_text,
    parse_message,
    part_text,
)


@dataclass(slots=True)
class AttachmentInfo:
    index: int  # 1-based, as listed
    filename: str  # decoded (RFC 2231 / RFC 2047), may be empty
    mime_type: str
    part: BodyPart


@dataclass(slots=True)
class MessageView:
    raw: bytes
    parsed: ParsedMessage
    text: str
    from_html: bool  # the text was rendered from an HTML part
    attachments: list[AttachmentInfo]

    def attachment_data(self, att: AttachmentInfo) -> bytes:
        return decode_part(self.raw, att.part)


def view(raw: bytes, prefer_html: bool = False) -> MessageView:
    parsed = parse_message(raw)
    text_body, html_body, attachments = body_lists(parsed.body)
    chosen = html_body if prefer_html else text_body
    pieces: list[str] = []
    from_html = False
    for part in chosen:
        if part.type_lower != "text":
            continue
        text = part_text(raw, part)
        if part.subtype_lower == "html":
            text = html_to_text(text)
            from_html = True
        pieces.append(text)
    infos = [
        AttachmentInfo(i, part.filename or "", part.mime_type, part)
        for i, part in enumerate(attachments, 1)
    ]
    return MessageView(raw, parsed, "\n".join(pieces), from_html, infos)


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")  # path separators, control characters


def safe_filename(name: str, index: int, mime_type: str) -> str:
    """A file name safe to create in a chosen directory: no path, no control characters,
    no leading dot; ``attachment-N`` with an extension from the type when there is none."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".")
    if not name:
        import mimetypes

        ext = mimetypes.guess_extension(mime_type) or ".bin"
        name = f"attachment-{index}{ext}"
    encoded = name.encode("utf-8")
    if len(encoded) > 200:  # most file systems allow 255 octets
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) < 16 else ""
        stem = (stem if dot else name).encode("utf-8")[: 200 - len(ext)].decode("utf-8", "ignore")
        name = f"{stem}.{ext}" if ext else stem
    return name
