"""Blobs (RFC 8620 §6): ids, uploads kept in the data directory, downloads.

Blob ids: ``G<content id>`` is a stored message's raw bytes (readable by a user who has a
copy of it); ``U<sha-256 prefix>`` an upload (``DIR/jmap-uploads/<user id>/``, expired after
``[jmap] upload_ttl``, all of a user's uploads bounded by ``upload_quota``); a part of either
is ``<blob>_<part>`` with the part number's dots as dashes (``G12_2-1``), its content
transfer-decoded (§4.1.4 blobId).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from courriel.mime.content import decode_part
from courriel.mime.parse import parse_message

if TYPE_CHECKING:
    from courriel.jmap.index import Account
    from courriel.server import Context

MAX_NESTING = 8


def message_blob_id(content_id: int) -> str:
    return f"G{content_id}"


def message_content(blob_id: str) -> int | None:
    """The content id of a whole stored message's blob id (``G<content id>``), else None."""
    if blob_id.startswith("G") and blob_id[1:].isdigit() and len(blob_id) < 20:
        return int(blob_id[1:])
    return None


def part_prefix(content_id: int) -> str:
    return message_blob_id(content_id)


def parsed_prefix(blob_id: str) -> str:
    return blob_id


def part_blob_id(prefix: str, part_id: str) -> str:
    return f"{prefix}_{part_id.replace('.', '-')}"


def upload_dir(ctx: Context, user_id: int) -> Path:
    return ctx.cfg.data_dir / "jmap-uploads" / str(user_id)


class UploadError(Exception):
    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit
        self.detail = detail


def _sweep(root: Path, ttl: int) -> int:
    """Remove expired uploads; returns the bytes the rest use."""
    used = 0
    now = time.time()
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.endswith(".type"):
            continue
        try:
            st = entry.stat()
        except FileNotFoundError:
            continue
        if now - st.st_mtime > ttl:
            for path in (entry.path, entry.path + ".type"):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        else:
            used += st.st_size
    return used


def sweep_all(ctx: Context) -> None:
    base = ctx.cfg.data_dir / "jmap-uploads"
    try:
        users = list(os.scandir(base))
    except FileNotFoundError:
        return
    for entry in users:
        _sweep(Path(entry.path), ctx.cfg.jmap.upload_ttl)


def _store_upload(root: Path, data: bytes, ctype: str, ttl: int, quota: int) -> str:
    used = _sweep(root, ttl)
    blob_id = "U" + hashlib.sha256(data).hexdigest()[:48]
    path = root / blob_id
    if path.exists():
        os.utime(path)  # an identical upload: keep it longer
    else:
        if used + len(data) > quota:
            raise UploadError("uploadQuota", "upload space for this account is full")
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{blob_id}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    (root / f"{blob_id}.type").write_text(ctype)
    return blob_id


async def save_upload(ctx: Context, user_id: int, data: bytes, ctype: str) -> str:
    cfg = ctx.cfg.jmap
    if len(data) > cfg.max_size_upload:
        raise UploadError("maxSizeUpload", f"larger than {cfg.max_size_upload} octets")
    return await asyncio.to_thread(
        _store_upload, upload_dir(ctx, user_id), data, ctype, cfg.upload_ttl, cfg.upload_quota
    )


def _read_upload(root: Path, blob_id: str, ttl: int) -> tuple[bytes, str]:
    path = root / blob_id
    try:
        if time.time() - path.stat().st_mtime > ttl:
            raise LookupError(blob_id)
        data = path.read_bytes()
    except FileNotFoundError:
        raise LookupError(blob_id) from None
    try:
        ctype = (root / f"{blob_id}.type").read_text().strip() or "application/octet-stream"
    except FileNotFoundError:
        ctype = "application/octet-stream"
    return data, ctype


async def read_blob(acct: Account, blob_id: str) -> tuple[bytes, str]:
    """The bytes and media type of a blob this account may read; LookupError otherwise."""
    base, *parts = blob_id.split("_")
    if len(parts) > MAX_NESTING or not base[1:].isalnum() or len(blob_id) > 255:
        raise LookupError(blob_id)
    if base.startswith("U") and len(base) == 49:
        data, ctype = await asyncio.to_thread(
            _read_upload, upload_dir(acct.ctx, acct.user_id), base, acct.ctx.cfg.jmap.upload_ttl
        )
    elif base.startswith("G") and base[1:].isdigit() and len(base) < 20:
        entry = (await acct.index()).emails.get(int(base[1:]))
        if entry is None:
            raise LookupError(blob_id)
        box, uid = entry.copies[0]
        recs = await acct.store.get_records(box, [uid])
        if not recs:
            raise LookupError(blob_id)
        try:
            data = await acct.store.read_message(recs[0].blob)
        except FileNotFoundError:
            raise LookupError(blob_id) from None
        ctype = "message/rfc822"
    else:
        raise LookupError(blob_id)
    for part in parts:
        try:
            section = tuple(int(n) for n in part.split("-"))
        except ValueError:
            raise LookupError(blob_id) from None
        body = parse_message(data).body
        node = body.part_at(section) if section != (1,) or body.children else body
        if node is None or node.children:
            raise LookupError(blob_id)
        data, ctype = decode_part(data, node), node.mime_type
    return data, ctype
