"""Line endings: the store keeps CRLF (RFC 5322 §2.1), mbox and Maildir files keep LF.

to_lf(to_crlf(raw)) == raw for any bytes without CR LF pairs (every LF-only file), and
to_crlf(to_lf(data)) == data for "clean" data: every LF preceded by exactly one CR
(no bare LF, no CR CR LF). Lines already ending in CRLF in a file are kept, not doubled,
so a CRLF mbox or Maildir file reads as clean CRLF data too.
"""

from __future__ import annotations


def to_crlf(raw: bytes) -> bytes:
    """File form → store form: each bare LF becomes CRLF, existing CRLF stays."""
    if b"\r" not in raw:
        return raw.replace(b"\n", b"\r\n")
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def to_lf(data: bytes) -> bytes:
    """Store form → file form: each CRLF becomes LF; a bare CR or LF is left alone."""
    return data.replace(b"\r\n", b"\n")


def crlf_size(raw: bytes) -> int:
    """len(to_crlf(raw)) without building it (Maildir ",W=" virtual size)."""
    return len(raw) + raw.count(b"\n") - raw.count(b"\r\n")
