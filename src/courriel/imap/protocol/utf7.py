"""Modified UTF-7 for mailbox names (RFC 3501 §5.1.3; RFC 9051 §5.1 keeps it for IMAP4rev1 clients).

Printable US-ASCII except "&" stands for itself; "&" is "&-"; any other run of characters is
UTF-16BE in modified base64 (``,`` instead of ``/``, no padding) between "&" and "-".
"""

from __future__ import annotations

import base64
import binascii


class UTF7Error(ValueError):
    pass


def _b64(chars: str) -> str:
    raw = chars.encode("utf-16-be")
    return base64.b64encode(raw).rstrip(b"=").replace(b"/", b",").decode("ascii")


def encode(name: str) -> str:
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            if run:
                out.append("&" + _b64("".join(run)) + "-")
                run.clear()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append("&" + _b64("".join(run)) + "-")
    return "".join(out)


def decode(name: str) -> str:
    """Decode; raises UTF7Error on malformed input (RFC 3501: the encoding must be canonical)."""
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ord(ch) < 0x20 or ord(ch) > 0x7E:
            raise UTF7Error("8-bit or control character in a modified UTF-7 name")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise UTF7Error("unterminated &-sequence")
        chunk = name[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        if any(not (c.isalnum() or c in "+,") for c in chunk) or not chunk.isascii():
            raise UTF7Error("invalid character in &-sequence")
        b64 = chunk.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        try:
            raw = base64.b64decode(b64, validate=True)
            text = raw.decode("utf-16-be")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise UTF7Error("invalid modified base64") from None
        if len(raw) % 2 or any(0x20 <= ord(c) <= 0x7E for c in text) or _b64(text) != chunk:
            raise UTF7Error("non-canonical modified UTF-7")
        if name.startswith("&", i) and not name.startswith("&-", i):
            # RFC 3501 §5.1.3: no null shift "-&" between two runs ("&AOk-&AOk-" is "&AOkA6Q-").
            raise UTF7Error("non-canonical modified UTF-7: two adjacent &-sequences")
        out.append(text)
    return "".join(out)
