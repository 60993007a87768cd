"""The SQLite APPEND path: the message file fsynced in parallel with the rows, yet before the
commit; a failed file write stores nothing; the pool of files refilled ahead; file ids that
sort in creation order; WAL checkpoints in their own thread. And the PREVIEW shortcut."""

from __future__ import annotations

import errno
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from courriel.mime.content import PREVIEW_CHARS, body_lists, preview
from courriel.mime.parse import parse_message
from courriel.store.api import INBOX, Flag, NotFound
from courriel.store.blobs import BlobStore
from courriel.store.content import ContentSummary
from courriel.store.sqlite import append as append_ops
from courriel.store.sqlite import db
from courriel.store.sqlite.store import SQLiteStore
from tests.conftest import StoreRunner, message


def _open(tmp_path: Path) -> tuple[StoreRunner, SQLiteStore, int]:
    r = StoreRunner(tmp_path)
    s = r.store
    assert isinstance(s, SQLiteStore)
    r.run(s.add_domain("example.test"))
    user = r.run(s.add_user("alice@example.test", "pw"))
    inbox = r.run(s.get_mailbox(user.id, INBOX))
    assert inbox is not None
    return r, s, inbox.id


def _committed(root: Path, blob: str) -> bool:
    conn = sqlite3.connect(root / "courriel.db")
    try:
        return conn.execute("SELECT 1 FROM contents WHERE blob = ?", (blob,)).fetchone() is not None
    finally:
        conn.close()


def test_row_committed_only_after_the_file_is_durable(tmp_path: Path) -> None:
    r, s, box = _open(tmp_path)
    try:
        seen: list[tuple[str, bool, bool]] = []
        real_write = s.blobs.write
        rows_ready = threading.Event()
        real_deliver = db.Tx.run

        def slow_write(blob: str, data: bytes) -> None:
            # The writer has the rows (it got the operation); the file is not written yet.
            assert rows_ready.wait(10)
            time.sleep(0.05)  # leaves the writer every chance to commit too early
            seen.append((blob, _committed(tmp_path, blob), s.blobs.path(blob).stat().st_size > 0))
            real_write(blob, data)

        def spy_run(self: db.Tx, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
            cur = real_deliver(self, sql, args)
            if sql.startswith("UPDATE mailboxes SET uidnext"):
                rows_ready.set()  # the last statement of the rows
            return cur

        s.blobs.write = slow_write  # type: ignore[method-assign]
        db.Tx.run = spy_run  # type: ignore[method-assign]
        try:
            data = message("durable", "body\r\n")
            appended = r.run(s.append(box, data, Flag.SEEN))
        finally:
            db.Tx.run = real_deliver  # type: ignore[method-assign]
        (blob, committed, written) = seen[0]
        assert (committed, written) == (False, False)  # the rows waited for the file
        assert _committed(tmp_path, blob)
        assert s.blobs.get(blob) == data
        assert [m.uid for m in r.run(s.list_messages(box))] == [appended.uid]
    finally:
        r.close()


def test_failed_file_write_stores_nothing(tmp_path: Path) -> None:
    r, s, box = _open(tmp_path)
    try:
        real_write = s.blobs.write
        failed: list[str] = []

        def full_disk(blob: str, data: bytes) -> None:
            failed.append(blob)
            s.blobs.delete(blob)  # as BlobStore._fill does when its write fails
            raise OSError(errno.ENOSPC, "No space left on device")

        s.blobs.write = full_disk  # type: ignore[method-assign]
        with pytest.raises(OSError):
            r.run(s.append(box, message("lost", "x\r\n")))
        assert failed and not _committed(tmp_path, failed[0])
        assert not s.blobs.path(failed[0]).exists()
        mb = r.run(s.get_mailbox_by_id(box))
        assert mb is not None and mb.uidnext == 1 and mb.messages == 0
        s.blobs.write = real_write  # type: ignore[method-assign]
        ok = r.run(s.append(box, message("kept", "y\r\n")))
        assert ok.uid == 1  # the failed one used no UID
        # an operation the store refuses (no such mailbox) leaves no file behind either
        before = set(s.blobs.iter_ids())
        with pytest.raises(NotFound):
            r.run(s.append(box + 1000, message("nowhere", "z\r\n")))
        assert set(s.blobs.iter_ids()) == before
        assert [m.uid for m in r.run(s.list_messages(box))] == [1]
    finally:
        r.close()


def test_parsed_ahead_when_the_writer_is_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, s, box = _open(tmp_path)
    try:
        parsed_in: list[str] = []
        real = append_ops.summarize

        def spy(data: bytes, depth: int = 100) -> ContentSummary:
            parsed_in.append(threading.current_thread().name)
            return real(data, depth)

        monkeypatch.setattr(append_ops, "summarize", spy)
        first = r.run(s.append(box, message("idle", "a\r\n")))
        monkeypatch.setattr(s._writer, "idle", lambda: False)
        second = r.run(s.append(box, message("busy", "b\r\n")))
        assert parsed_in[0] == "courriel-store-writer" and parsed_in[1] != "courriel-store-writer"
        records = r.run(s.get_records(box, [first.uid, second.uid]))
        assert [rec.subject for rec in records] == ["idle", "busy"]
    finally:
        r.close()


def test_pool_is_topped_up_ahead(tmp_path: Path) -> None:
    r, s, box = _open(tmp_path)
    try:
        for i in range(s.blobs.pool_size + 3):
            r.run(s.append(box, message(f"m{i}", "text\r\n")))
        s._files.submit(lambda: None).result()  # a top-up under way has finished
        assert len(s.blobs._pool) >= s.blobs.pool_size // 2
        assert not s.blobs.low()
        stored = sorted(i.uid for i in r.run(s.list_messages(box)))
        assert stored == list(range(1, s.blobs.pool_size + 4))
    finally:
        r.close()
    # close removes the pool's unused files: only the messages' files remain
    assert len(list(BlobStore(tmp_path / "blobs").iter_ids())) == s.blobs.pool_size + 3


def test_blob_ids_ascend_in_creation_order(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs", pool=4)
    ids = [blobs.put(b"x", sync=False) for _ in range(6)]
    ids.append(blobs.reserve(refill=True) or "")
    ids += [blobs.put(b"y", sync=False) for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    plain = BlobStore(tmp_path / "plain")
    more = [plain.put(b"z") for _ in range(3)]
    assert more == sorted(more)


def test_checkpoints_run_in_their_own_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "CHECKPOINT_COMMITS", 3)
    r, s, box = _open(tmp_path)
    try:
        for i in range(4):
            r.run(s.append(box, message(f"c{i}", "text\r\n")))
        checkpointer = s._writer._checkpointer
        deadline = time.monotonic() + 30
        while not checkpointer.checkpoints and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.checkpoints >= 1
    finally:
        r.close()
    assert not s._writer._checkpointer._thread.is_alive()


def _reference_preview(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:PREVIEW_CHARS]


@pytest.mark.parametrize(
    "body",
    [
        "short text",
        "  leading and trailing  \r\n",
        "a" * 300,
        "word " * 400,
        "x" * (PREVIEW_CHARS * 4 - 1) + " " * 5000 + "tail",  # the start collapses to fewer
        " " * (PREVIEW_CHARS * 4 + 10) + "late start",
        "y" * PREVIEW_CHARS + " " * 3000,  # exactly the limit, then only space
        "z" * (PREVIEW_CHARS - 1) + "\r\n" * 2000 + "after",
        "tab\there\r\n\r\n" * 500,
        "",
    ],
)
def test_preview_from_the_start_equals_the_whole(body: str) -> None:
    data = ("Subject: p\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    text_body, html_body, _attachments = body_lists(parse_message(data).body)
    assert preview(data, text_body, html_body) == _reference_preview(body)
