"""Message files written into a pool of files created ahead (one directory fsync a batch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.store import blobs as blobs_mod
from courriel.store.blobs import BlobStore


def test_pool_files_hold_new_blobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced_dirs: list[str] = []
    real = blobs_mod.fsync_dir
    monkeypatch.setattr(blobs_mod, "fsync_dir", lambda p: (synced_dirs.append(p.name), real(p)))
    store = BlobStore(tmp_path / "blobs", use_syncfs=False, pool=4)
    a = store.put(b"first", sync=False)
    day = a.partition("/")[0]
    assert synced_dirs.count(day) == 1  # the batch of 4 empty files: one directory fsync
    assert len(list((tmp_path / "blobs" / day).iterdir())) == 4
    assert list(store.iter_ids()) == [a]  # unused pool files are not blobs
    synced_dirs.clear()
    store.sync([a])
    assert synced_dirs == []  # its directory entry was durable already
    b = store.put(b"second", sync=False)
    c = store.put(b"third", sync=False)
    store.sync([b, c])
    assert synced_dirs == []
    assert (store.get(a), store.get(b), store.get(c)) == (b"first", b"second", b"third")
    store.delete(c)  # an operation that failed: its file goes
    assert sorted(store.iter_ids()) == sorted([a, b])
    store.put(b"fourth", sync=False)
    e = store.put(b"fifth", sync=False)  # the pool was empty: a new batch
    assert synced_dirs == [day]
    synced_dirs.clear()
    store.sync([e])
    assert synced_dirs == []
    store.release_pool()
    assert len(list((tmp_path / "blobs" / day).iterdir())) == 4  # a, b, fourth, fifth


def test_without_pool_the_directory_is_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced_dirs: list[str] = []
    real = blobs_mod.fsync_dir
    monkeypatch.setattr(blobs_mod, "fsync_dir", lambda p: (synced_dirs.append(p.name), real(p)))
    store = BlobStore(tmp_path / "blobs", use_syncfs=False)
    a = store.put(b"x", sync=False)
    synced_dirs.clear()
    store.sync([a])
    assert synced_dirs == [a.partition("/")[0]]
