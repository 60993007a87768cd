"""What Sieve tests read from a message: decoded header fields, addresses, body text, size,
the envelope. Headers are split once; the MIME structure is parsed only when a body test
asks for it."""

from __future__ import annotations

from dataclasses import dataclass

from courriel.mime import BodyPart, decode_header_value, parse_addresses, parse_message, part_text
from courriel.mime.headers import scan_header
from courriel.mime.params import parse_content_type

#: Body text a body test looks at, per message (bounded: a test never reads 50 MB).
MAX_BODY_TEXT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str  # "" for the null sender
    rcpt_to: str  # the envelope recipient as given (before alias expansion)
    user: str  # the address of the user whose script runs


class MessageView:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.fields, self.body_start = scan_header(data, 0, len(data))

    def raw_headers(self, name: str) -> list[str]:
        low = name.lower()
        return [v for n, v in self.fields if n.lower() == low]

    def headers(self, name: str) -> list[str]:
        """Every occurrence of a field, unfolded and RFC 2047-decoded (RFC 5228 §5.7)."""
        return [decode_header_value(v) for v in self.raw_headers(name)]

    def _leaves(self) -> list[BodyPart]:
        """The leaf parts; a single-part message (the common case) without a full MIME parse."""
        raws = self.raw_headers("content-type")
        ctype = parse_content_type(raws[0], []) if raws else None
        main = ctype[0].lower() if ctype else "text"
        if main not in ("multipart", "message"):
            cte = self.raw_headers("content-transfer-encoding")
            part = BodyPart(
                type=ctype[0] if ctype else "text",
                subtype=ctype[1] if ctype else "plain",
                params=ctype[2] if ctype else [],
                encoding=cte[0].strip() if cte else "7bit",
                body_start=self.body_start,
                end=len(self.data),
            )
            return [part]
        return [p for _, p in parse_message(self.data).body.walk() if not p.children]

    def addresses(self, raw: str) -> list[str]:
        return [addr for _, addr in parse_addresses(raw)]

    def body(self, mode: str, types: list[str]) -> list[str]:
        """RFC 5173 §5: :raw (undecoded body), :text (the text parts decoded), :content (parts
        whose type matches ``types``, decoded)."""
        if mode == "raw":
            return [self.data[self.body_start : self.body_start + MAX_BODY_TEXT].decode("utf-8", "replace")]
        out: list[str] = []
        budget = MAX_BODY_TEXT
        for part in self._leaves():
            if budget <= 0:
                break
            ctype = f"{part.type_lower}/{part.subtype_lower}"
            if mode == "text":
                wanted = part.type_lower == "text"
            else:
                wanted = any(t == "" or t.lower() == ctype or t.lower() == part.type_lower for t in types)
            if not wanted:
                continue
            if part.type_lower == "text":
                text = part_text(self.data, part, budget)
            else:
                text = self.data[part.body_start : min(part.end, part.body_start + budget)].decode("utf-8", "replace")
            budget -= len(text)
            out.append(text)
        return out
