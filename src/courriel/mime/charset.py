"""Charset names and best-effort decoding of bytes whose charset is declared, wrong or unknown.

Invariants:
- ``decode_bytes`` never raises and never loses bytes silently when no charset is
  declared: valid UTF-8 wins, else windows-1252, else Latin-1 (which cannot fail).
- Only text codecs are ever used: a declared charset such as ``rot13`` or ``base64``
  (Python codecs that are not text encodings) is treated as unknown.
"""

from __future__ import annotations

import codecs
from functools import lru_cache

# MIME charset labels Python does not know, or knows as a poorer codec.
# The WHATWG Encoding Standard makes the same choices (latin-1/ascii are read as
# windows-1252 there too, but we keep strict ISO-8859-1 when it decodes cleanly).
_ALIASES: dict[str, str] = {
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jp",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-2-0-utf-7": "utf-7",
    "utf8": "utf-8",
    "cp-1252": "cp1252",
    "x-user-defined": "latin-1",
}

# Labels that promise nothing: try UTF-8, then windows-1252.
_UNKNOWN = frozenset(
    {
        "",
        "unknown",
        "unknown-8bit",
        "x-unknown",
        "default",
        "us-ascii",
        "ascii",
        "ansi_x3.4-1968",
        "iso646-us",
        "us",
    }
)

# Preferred MIME names (IANA) for the codecs we write, by Python codec name.
_MIME_NAMES: dict[str, str] = {
    "ascii": "us-ascii",
    "utf-8": "utf-8",
    "iso8859-1": "iso-8859-1",
    "iso8859-15": "iso-8859-15",
    "iso8859-2": "iso-8859-2",
    "koi8-r": "koi8-r",
    "koi8-u": "koi8-u",
    "iso2022_jp": "iso-2022-jp",
    "shift_jis": "shift_jis",
    "cp932": "windows-31j",
    "euc_jp": "euc-jp",
    "cp1252": "windows-1252",
    "cp1251": "windows-1251",
    "cp1250": "windows-1250",
    "gb18030": "gb18030",
    "gb2312": "gb2312",
    "big5": "big5",
    "euc_kr": "euc-kr",
}


@lru_cache(maxsize=512)
def codec_name(charset: str | None) -> str | None:
    """The Python text codec for a MIME charset label, or None when unknown or not text."""
    if charset is None:
        return None
    label = charset.strip().strip("\"'").lower()
    if label in _UNKNOWN:
        return None
    label = _ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


@lru_cache(maxsize=128)
def mime_name(charset: str) -> str:
    """The name to write in a charset= parameter for a charset label we can encode with."""
    name = codec_name(charset)
    if name is None:
        return "us-ascii"
    return _MIME_NAMES.get(name, charset.strip().lower())


@lru_cache(maxsize=128)
def is_ascii_compatible(charset: str) -> bool:
    """True when the charset encodes ASCII text (and CR, LF) as itself, e.g. not UTF-16."""
    name = codec_name(charset)
    if name is None:
        return False
    try:
        return "a\r\n~".encode(name) == b"a\r\n~"
    except (UnicodeError, LookupError, ValueError):
        return False


def _is_seven_bit_stateful(name: str) -> bool:
    """Codecs whose ASCII bytes are not ASCII text (ISO-2022-*, UTF-7, HZ)."""
    return name.startswith("iso2022") or name in ("utf-7", "hz") or not is_ascii_compatible(name)


def guess_decode(raw: bytes) -> str:
    """Decode bytes of unknown charset: UTF-8 when valid, else windows-1252, else Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def decode_bytes(raw: bytes, charset: str | None) -> str:
    """Decode ``raw`` declared as ``charset``; never raises.

    A declared but failing charset is retried as UTF-8 (the most common mislabel) and
    then decoded with replacement characters.
    """
    name = codec_name(charset)
    if raw.isascii() and (name is None or not _is_seven_bit_stateful(name)):
        return raw.decode("ascii")
    if name is None:
        return guess_decode(raw)
    try:
        return raw.decode(name)
    except Exception:  # codec bugs included: decoding must never raise
        pass
    if name != "utf-8":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode(name, errors="replace")
    except Exception:
        return guess_decode(raw)


def surrogates_to_text(value: str) -> str:
    """Turn a header value decoded with surrogateescape into proper Unicode.

    Raw 8-bit header bytes (RFC 6532 UTF-8, or legacy Latin-1) are guessed per value.
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return value
    try:
        return guess_decode(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate that did not come from surrogateescape
        return value.encode("utf-8", "replace").decode("utf-8")
