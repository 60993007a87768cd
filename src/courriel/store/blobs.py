"""Message files: immutable bytes, one file each, under ``DIR/blobs/<day>/<random>``.

A blob is written with O_EXCL and fsynced by whoever stores it (in a worker thread, so
concurrent deliveries fsync in parallel); the fsync of its directory is left to the
committing writer, which does it once per directory per batch before the database commit
(group commit). A blob becomes visible only through the database row that names it, so a
crash between the two leaves an unreferenced file, never a half-written message.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._known_dirs: set[str] = set()

    def path(self, blob: str) -> Path:
        if "/" not in blob or ".." in blob or blob.startswith("/"):
            raise ValueError(f"bad blob id {blob!r}")
        return self.root / blob

    def _dir_for_now(self) -> str:
        name = time.strftime("%Y%m%d", time.gmtime())
        if name not in self._known_dirs:
            d = self.root / name
            if not d.is_dir():
                d.mkdir(exist_ok=True)
                fsync_dir(self.root)  # the new directory's entry must survive too
            self._known_dirs.add(name)
        return name

    def put(self, data: bytes) -> str:
        """Write and fsync a new blob; returns its id. The directory is not yet fsynced."""
        blob = f"{self._dir_for_now()}/{secrets.token_hex(12)}"
        fd = os.open(self.root / blob, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            self.delete(blob)
            raise
        os.close(fd)
        return blob

    def sync_dirs(self, blobs: Iterable[str]) -> None:
        """fsync the directory of each blob once."""
        for d in {b.partition("/")[0] for b in blobs}:
            fsync_dir(self.root / d)

    def get(self, blob: str) -> bytes:
        with open(self.path(blob), "rb") as fh:
            return fh.read()

    def delete(self, blob: str) -> None:
        try:
            os.unlink(self.path(blob))
        except FileNotFoundError:
            pass

    def iter_ids(self) -> Iterator[str]:
        for d in sorted(self.root.iterdir()):
            if d.is_dir():
                for f in d.iterdir():
                    yield f"{d.name}/{f.name}"
