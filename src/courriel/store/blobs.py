"""Message files: immutable bytes, one file each, under ``DIR/blobs/<day>/<random>``.

A blob is written with O_EXCL and fsynced by whoever stores it (in a worker thread, so
concurrent deliveries fsync in parallel); the fsync of its directory is left to the
committing writer, which does it once per directory per batch before the database commit
(group commit). A blob becomes visible only through the database row that names it, so a
crash between the two leaves an unreferenced file, never a half-written message.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path


def _load_syncfs() -> ctypes._NamedFuncPointer | None:
    """Linux syncfs(2), which since 5.8 reports writeback errors; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    release = os.uname().release.split(".")
    try:
        if (int(release[0]), int(release[1])) < (5, 8):
            return None
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError, ValueError, IndexError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _load_syncfs()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path, use_syncfs: bool = True) -> None:
        self.root = root
        self._syncfs = _syncfs
        self.use_syncfs = use_syncfs and _syncfs is not None
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

    def put(self, data: bytes, sync: bool = True) -> str:
        """Write a new blob (fsynced unless ``sync`` is false); returns its id.

        The directory is not fsynced here: see :meth:`sync`.
        """
        blob = f"{self._dir_for_now()}/{secrets.token_hex(12)}"
        fd = os.open(self.root / blob, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if sync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            self.delete(blob)
            raise
        os.close(fd)
        return blob

    def sync(self, blobs: Iterable[str], files: bool = True) -> None:
        """fsync the given blobs (when ``files``), then the directory of each once.

        Syncing a batch of files one after the other from one thread costs about one journal
        commit on ext4 and XFS, where concurrent writers each calling fsync cost one each.
        """
        blobs = list(blobs)
        if len(blobs) > 1 and self.use_syncfs and self._syncfs is not None:
            # One syncfs(2) writes back every new file and directory entry with one journal
            # commit and one device flush, where an fsync each costs a flush each.
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                if self._syncfs(fd) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"syncfs: {os.strerror(err)}")
            finally:
                os.close(fd)
            return
        if files:
            for blob in blobs:
                fd = os.open(self.root / blob, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
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
