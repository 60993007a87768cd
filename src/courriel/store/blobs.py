"""Message files: immutable bytes, one file each, under ``DIR/blobs/<day>/<random>``.

A blob is written with O_EXCL and fsynced by whoever stores it (in a worker thread, so
concurrent deliveries fsync in parallel); the fsync of its directory is left to the
committing writer, which does it once per directory per batch before the database commit
(group commit). A blob becomes visible only through the database row that names it, so a
crash between the two leaves an unreferenced file, never a half-written message.

With ``pool`` > 0, new blobs are written into files created empty beforehand, a batch at a
time, whose directory entries were made durable by one directory fsync for the whole batch:
a lone delivery then costs the fsync of its file only, not that of the directory too. A
crash leaves the unused ones as empty unreferenced files (like any file written before a
commit that did not happen).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import secrets
import sys
import threading
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
log = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path, use_syncfs: bool = True, pool: int = 0) -> None:
        self.root = root
        self._syncfs = _syncfs
        self.use_syncfs = use_syncfs and _syncfs is not None
        root.mkdir(parents=True, exist_ok=True)
        self._known_dirs: set[str] = set()
        self.pool_size = pool
        self._lock = threading.Lock()
        self._pool: list[str] = []  # empty files whose directory entries are durable
        self._pooled: set[str] = set()  # the same, for iter_ids
        self._entry_durable: set[str] = set()  # taken from the pool, their directory fsync not needed
        self._topping = False  # a top_up() under way

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

    def _refill(self) -> None:
        """Create a batch of empty files and make their directory entries durable at once."""
        made = []
        try:
            for _ in range(self.pool_size):
                blob = self._new_id()
                os.close(os.open(self.root / blob, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640))
                made.append(blob)
            for d in {b.partition("/")[0] for b in made}:
                fsync_dir(self.root / d)
        except BaseException:
            for blob in made:
                self.delete(blob)
            raise
        with self._lock:
            self._pool.extend(made)
            self._pooled.update(made)

    def _new_id(self) -> str:
        # Time first: ids of new files sort after the older ones, so the database's index
        # on them grows at its end (one B-tree page touched per delivery, not a random one).
        return f"{self._dir_for_now()}/{time.time_ns():016x}{secrets.token_hex(4)}"

    def _take(self) -> str | None:
        with self._lock:
            if not self._pool:
                return None
            blob = self._pool.pop(0)  # the oldest first: ids handed out in ascending order
            self._pooled.discard(blob)
            self._entry_durable.add(blob)
            return blob

    def reserve(self, refill: bool = False) -> str | None:
        """An empty file of the pool, its directory entry durable, for :meth:`write`. When
        the pool is empty: None, or with ``refill`` (blocking I/O) a new batch's first."""
        if not self.pool_size:
            return None
        blob = self._take()
        while blob is None and refill:
            self._refill()
            blob = self._take()
        return blob

    def low(self) -> bool:
        """Fewer than half a batch left in the pool, and no :meth:`top_up` under way."""
        return bool(self.pool_size) and len(self._pool) < self.pool_size // 2 and not self._topping

    def top_up(self) -> None:
        """Refill the pool ahead (from a worker thread), so that taking from it never waits
        for a batch of file creations (milliseconds on a busy file system)."""
        with self._lock:
            if self._topping:
                return
            self._topping = True
        try:
            self._refill()
        except OSError as exc:  # the next put() or reserve(refill=True) tries again, and reports
            log.warning("message file pool: %s", exc)
        finally:
            self._topping = False

    def write(self, blob: str, data: bytes) -> None:
        """Fill a file from :meth:`reserve` and make it durable (file fsync; its directory
        entry was made durable with its batch): after this, only a row has to name it."""
        with self._lock:
            self._entry_durable.discard(blob)
        self._fill(blob, os.open(self.root / blob, os.O_WRONLY | os.O_CLOEXEC), data, True)

    def put(self, data: bytes, sync: bool = True) -> str:
        """Write a new blob (fsynced unless ``sync`` is false); returns its id.

        The directory is not fsynced here: see :meth:`sync`.
        """
        blob = self._take() if self.pool_size else None
        if blob is None and self.pool_size:
            self._refill()
            blob = self._take()
        if blob is not None:  # an empty file of the pool, never written before
            fd = os.open(self.root / blob, os.O_WRONLY | os.O_CLOEXEC)
        else:
            blob = self._new_id()
            fd = os.open(self.root / blob, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        self._fill(blob, fd, data, sync)
        return blob

    def _fill(self, blob: str, fd: int, data: bytes, sync: bool) -> None:
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

    def sync(self, blobs: Iterable[str], files: bool = True) -> None:
        """fsync the given blobs (when ``files``), then the directory of each once.

        Syncing a batch of files one after the other from one thread costs about one journal
        commit on ext4 and XFS, where concurrent writers each calling fsync cost one each.
        """
        blobs = list(blobs)
        with self._lock:
            pending = [b for b in blobs if b not in self._entry_durable]
            self._entry_durable.difference_update(blobs)
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
        for d in {b.partition("/")[0] for b in pending}:
            fsync_dir(self.root / d)

    def get(self, blob: str) -> bytes:
        with open(self.path(blob), "rb") as fh:
            return fh.read()

    def delete(self, blob: str) -> None:
        if self.pool_size:
            with self._lock:
                self._entry_durable.discard(blob)
        try:
            os.unlink(self.path(blob))
        except FileNotFoundError:
            pass

    def release_pool(self) -> None:
        """Remove the unused files of the pool (at close)."""
        with self._lock:
            unused, self._pool = self._pool, []
            self._pooled.clear()
        for blob in unused:
            self.delete(blob)

    def iter_ids(self) -> Iterator[str]:
        """Every stored file (the unused files of this process's pool excepted)."""
        for d in sorted(self.root.iterdir()):
            if d.is_dir():
                for f in d.iterdir():
                    blob = f"{d.name}/{f.name}"
                    if blob not in self._pooled:
                        yield blob
