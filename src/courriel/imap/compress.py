"""COMPRESS=DEFLATE (RFC 4978): both directions become one raw DEFLATE stream each.

The connection's streams are replaced: the writer goes through a transport that
compresses every write with a sync flush (so each response leaves at once), and a pump
task inflates what arrives into a fresh StreamReader. Inflation is bounded per step and
paused while the session has not consumed what it was given, so a small compressed input
cannot expand into unbounded memory.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from courriel.net import Connection

CHUNK = 64 * 1024
HIGH_WATER = 1 << 20


class _DeflateTransport(asyncio.Transport):
    def __init__(self, inner: asyncio.BaseTransport) -> None:
        super().__init__()
        self._inner: Any = inner
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 8)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        out = self._deflate.compress(bytes(data)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self._inner.write(out)

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def is_closing(self) -> bool:
        return bool(self._inner.is_closing())

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return int(self._inner.get_write_buffer_size())


async def _pump(raw: asyncio.StreamReader, out: asyncio.StreamReader) -> None:
    inflate = zlib.decompressobj(-15)
    try:
        while True:
            data = await raw.read(CHUNK)
            if not data:
                break
            while data:
                chunk = inflate.decompress(data, CHUNK)
                data = inflate.unconsumed_tail
                if chunk:
                    out.feed_data(chunk)
                while len(out._buffer) > HIGH_WATER:  # type: ignore[attr-defined]
                    await asyncio.sleep(0.005)  # let the session read what it has
    except zlib.error as exc:
        out.set_exception(ConnectionError(f"bad DEFLATE stream: {exc}"))
        return
    except (ConnectionError, OSError) as exc:
        out.set_exception(exc)
        return
    out.feed_eof()


def start_deflate(conn: Connection) -> None:
    raw_reader, raw_writer = conn.reader, conn.writer
    limit = raw_reader._limit  # type: ignore[attr-defined]
    reader = asyncio.StreamReader(limit=limit)
    transport = _DeflateTransport(raw_writer.transport)
    writer = asyncio.StreamWriter(transport, raw_writer._protocol, reader, asyncio.get_running_loop())  # type: ignore[attr-defined]
    task = asyncio.ensure_future(_pump(raw_reader, reader))
    writer._courriel_pump = task  # type: ignore[attr-defined]  # kept alive with the writer
    conn.reader = reader
    conn.writer = writer
