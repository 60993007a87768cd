"""A generated mail account for the sync tools: an mbox of N varied messages, and the two
views the tests compare (the server through imaplib, a local Maildir from the files)."""

from __future__ import annotations

import base64
import imaplib
import os
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imapclient.response_parser import parse_response

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma"]
UNICODE = ["Grüße aus Köln", "déjà vu", "Привет, мир", "こんにちは", "naïve café"]
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}


def message(i: int, rng: random.Random, tag: str = "gen") -> bytes:
    """One message with CRLF endings: plain text, or multipart with a base64 attachment."""
    when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=37 * i)
    subject = f"{tag} {i} " + " ".join(rng.choices(WORDS, k=rng.randrange(1, 6)))
    head = (
        f"From: Sender {i % 17} <sender{i % 17}@example.org>\r\nTo: alice@example.test\r\n"
        f"Subject: {subject}\r\nDate: {when:%a, %d %b %Y %H:%M:%S} +0000\r\n"
        f"Message-ID: <{tag}.{i}@corpus.example.org>\r\nMIME-Version: 1.0\r\n"
    )
    lines = [" ".join(rng.choices(WORDS, k=rng.randrange(3, 14))) for _ in range(rng.randrange(2, 60))]
    if i % 7 == 3:
        lines.insert(1, rng.choice(UNICODE))
    text = "\r\n".join(lines) + "\r\n"
    if i % 5 != 0:
        return (head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text).encode()
    blob = rng.randbytes(rng.randrange(100, 3000))
    b64 = base64.encodebytes(blob).decode().replace("\n", "\r\n")
    boundary = f"=_b{i}"
    return (
        head + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="blob{i}.bin"\r\n\r\n{b64}--{boundary}--\r\n'
    ).encode()


def write_mbox(path: Path, messages: list[bytes]) -> None:
    """An mbox (LF endings, as mbox files are) of messages that have no "From " lines inside."""
    with path.open("wb") as fh:
        for i, data in enumerate(messages):
            assert b"\nFrom " not in data
            when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=37 * i)
            fh.write(f"From sender@example.org {when:%a %b %d %H:%M:%S %Y}\n".encode())
            fh.write(data.replace(b"\r\n", b"\n") + b"\n")


def corpus(n: int, seed: int = 5) -> list[bytes]:
    rng = random.Random(seed)
    return [message(i, rng) for i in range(n)]


def message_id(data: bytes) -> str:
    m = re.search(rb"^Message-ID:\s*(<[^>]+>)", data, re.M | re.I)
    assert m, data[:300]
    return m.group(1).decode()


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


@dataclass(frozen=True)
class Mail:
    data: bytes  # LF line endings, for comparing with Maildir files
    flags: frozenset[str]


def strip_headers(data: bytes, names: tuple[bytes, ...]) -> bytes:
    """Drop header lines a sync tool adds to messages it copies (mbsync's X-TUID, say)."""
    head, sep, body = data.partition(b"\n\n")
    lowered = tuple(n.lower() + b":" for n in names)
    kept = [line for line in head.split(b"\n") if not line.lower().startswith(lowered)]
    return b"\n".join(kept) + sep + body


def server_view(conn: imaplib.IMAP4, mailbox: str = "INBOX", strip: tuple[bytes, ...] = ()) -> dict[str, Mail]:
    """Message-ID -> (bytes, flags) of a mailbox, from one UID FETCH 1:* (FLAGS BODY.PEEK[])."""
    typ, data = conn.select(mailbox, readonly=True)
    assert typ == "OK", data
    out: dict[str, Mail] = {}
    if int(data[0] or 0) == 0:
        return out
    typ, data = conn.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    assert typ == "OK"
    chunk: list[object] = []
    for piece in data:
        chunk.append(piece)
        if isinstance(piece, bytes):
            _, attrs = parse_response(chunk)
            chunk = []
            got = {k.upper(): v for k, v in zip(attrs[::2], attrs[1::2])}
            flags = frozenset(f.decode() for f in got[b"FLAGS"]) - {"\\Recent"}
            body = got[b"BODY[]"]
            mid = message_id(body)
            assert mid not in out, f"duplicate {mid} on the server"
            out[mid] = Mail(strip_headers(lf(body), strip), flags)
    return out


def maildir_flags(name: str) -> frozenset[str]:
    info = name.rpartition(":2,")[2] if ":2," in name else ""
    return frozenset(MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS)


def maildir_files(folder: Path) -> list[Path]:
    return [p for sub in ("cur", "new") for p in sorted((folder / sub).iterdir()) if not p.name.startswith(".")]


def maildir_view(folder: Path, strip: tuple[bytes, ...] = ()) -> dict[str, Mail]:
    """Message-ID -> (bytes, flags) of a Maildir folder; ``strip`` as for server_view."""
    out: dict[str, Mail] = {}
    for p in maildir_files(folder):
        data = strip_headers(lf(p.read_bytes()), strip)
        mid = message_id(data)
        assert mid not in out, f"duplicate {mid} in {folder}"
        out[mid] = Mail(data, maildir_flags(p.name))
    return out


def set_maildir_flags(path: Path, flags: str) -> Path:
    """Rename a Maildir file to carry exactly ``flags`` (letters in ASCII order)."""
    base = path.name.split(":2,")[0]
    new = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags))}"
    os.rename(path, new)
    return new


def add_maildir_message(folder: Path, data: bytes, name: str, flags: str = "") -> Path:
    tmp = folder / "tmp" / name
    tmp.write_bytes(lf(data))
    dest = folder / ("cur" if flags else "new") / (f"{name}:2,{flags}" if flags else name)
    os.rename(tmp, dest)
    return dest


def compare(server: dict[str, Mail], local: dict[str, Mail]) -> list[str]:
    """Differences between two views, as readable lines (empty when identical)."""
    diffs = []
    for mid in sorted(server.keys() - local.keys())[:5]:
        diffs.append(f"only on the server: {mid}")
    for mid in sorted(local.keys() - server.keys())[:5]:
        diffs.append(f"only locally: {mid}")
    n = len(server.keys() ^ local.keys())
    if n > 10:
        diffs.append(f"... {n} messages on one side only")
    for mid in sorted(server.keys() & local.keys()):
        s, m = server[mid], local[mid]
        if s.data != m.data:
            at = next((i for i, (x, y) in enumerate(zip(s.data, m.data)) if x != y), min(len(s.data), len(m.data)))
            diffs.append(f"bytes differ: {mid} at {at}: {s.data[at - 40 : at + 40]!r} vs {m.data[at - 40 : at + 40]!r}")
        if s.flags != m.flags:
            diffs.append(f"flags differ: {mid}: server {sorted(s.flags)} local {sorted(m.flags)}")
        if len(diffs) > 20:
            break
    return diffs
