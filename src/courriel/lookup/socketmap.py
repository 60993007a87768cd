"""The socketmap protocol (Sendmail 8.13 ``socket`` maps, Postfix ``socketmap:`` tables): pure
encoding and decoding, no I/O.

Every request and reply is a netstring (``<length>:<bytes>,``, D. J. Bernstein's netstrings,
as Sendmail's ``cf/README`` "socket map" section specifies). A request is ``<map> <key>``;
a reply is ``OK <value>``, ``NOTFOUND``, ``TEMP <reason>``, ``TIMEOUT <reason>`` or
``PERM <reason>``. The client may send several requests over one connection.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest request accepted: a map name and an address (RFC 5321 §4.5.3.1.3: 256-octet paths).
MAX_REQUEST = 1024
_MAX_DIGITS = len(str(MAX_REQUEST))


class SocketmapError(ValueError):
    """A malformed request: the server answers PERM and closes (the stream is out of sync)."""


@dataclass(frozen=True, slots=True)
class Request:
    map: str
    key: str


def decode_netstring(buf: bytes | bytearray) -> tuple[bytes, int] | None:
    """The first netstring of ``buf`` and the bytes it took, or None when more is needed."""
    colon = buf.find(b":", 0, _MAX_DIGITS + 1)
    if colon < 0:
        if len(buf) > _MAX_DIGITS or (buf and not bytes(buf).isdigit()):
            raise SocketmapError("netstring length expected")
        return None
    digits = bytes(buf[:colon])
    if not digits.isdigit() or (len(digits) > 1 and digits.startswith(b"0")):
        raise SocketmapError("bad netstring length")
    size = int(digits)
    if size > MAX_REQUEST:
        raise SocketmapError("request too long")
    end = colon + 1 + size
    if len(buf) <= end:
        return None
    if buf[end : end + 1] != b",":
        raise SocketmapError("netstring not terminated by a comma")
    return bytes(buf[colon + 1 : end]), end + 1


def encode_netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


def parse_request(payload: bytes) -> Request:
    """``<map> <key>``: a map name, one space, a key (UTF-8, no controls)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SocketmapError("request is not UTF-8") from None
    name, sep, key = text.partition(" ")
    if not sep or not name or not key:
        raise SocketmapError("request is not '<map> <key>'")
    if any(not c.isprintable() for c in text):
        raise SocketmapError("control character in request")
    return Request(name, key)


def ok(value: str) -> bytes:
    return encode_netstring(b"OK " + value.encode("utf-8"))


NOTFOUND = encode_netstring(b"NOTFOUND ")


def temp(reason: str) -> bytes:
    return encode_netstring(b"TEMP " + reason.encode("utf-8"))


def perm(reason: str) -> bytes:
    return encode_netstring(b"PERM " + reason.encode("utf-8"))
