"""The recorder and the tracing policy without a server: size limit, pre-login buffer,
retention, live watchers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from courriel.config import TraceSection
from courriel.trace import recorder
from courriel.trace.recorder import Tracer
from courriel.trace.service import expire


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_nothing_configured_means_no_recorder(tmp_path: Path) -> None:
    assert Tracer(TraceSection(), tmp_path).start("imap", "127.0.0.1") is None


def test_listener_and_network_policy(tmp_path: Path) -> None:
    tracer = Tracer(TraceSection(enabled_listeners=["pop3"], networks=["192.0.2.0/24"]), tmp_path)
    by_listener = tracer.start("pop3", "127.0.0.1")
    by_network = tracer.start("imap", "192.0.2.9")
    assert by_listener is not None and by_network is not None and by_network.recording
    assert tracer.start("imap", "198.51.100.1") is None
    by_listener.close()
    by_network.close()
    assert len(list(tmp_path.glob("*/*.jsonl"))) == 2


def test_size_limit_truncates(tmp_path: Path) -> None:
    tracer = Tracer(TraceSection(enabled_listeners=["smtp"], max_bytes_per_session=2000), tmp_path)
    rec = tracer.start("smtp", "127.0.0.1", "127.0.0.1:25", 4000)
    assert rec is not None
    for i in range(100):
        rec.data("c", f"NOOP {i}\r\n".encode())
    rec.close()
    assert rec.path is not None
    got = entries(rec.path)
    assert got[-1]["text"] == "transcript truncated (size limit)"
    assert rec.path.stat().st_size < 2200


def test_buffer_until_login_bounded(tmp_path: Path) -> None:
    tracer = Tracer(TraceSection(users=["carol@example.test"]), tmp_path)
    other = tracer.start("pop3", "127.0.0.1")
    assert other is not None and not other.recording
    other.data("c", b"USER dave@example.test\r\nPASS x\r\n")
    other.data("s", b"+OK\r\n+OK\r\n")
    other.close()
    assert not list(tmp_path.glob("*/*.jsonl"))  # dave is not traced: nothing written
    rec = tracer.start("pop3", "127.0.0.1")
    assert rec is not None
    for _ in range(recorder.MAX_BUFFERED):
        rec.data("c", b"NOOP\r\n")
        rec.data("s", b"-ERR not yet\r\n")
    rec.data("c", b"USER carol@example.test\r\nPASS secret\r\n")
    rec.data("s", b"+OK\r\n+OK logged in\r\n")
    rec.close()
    assert rec.path is not None
    got = entries(rec.path)
    assert got[0]["text"].endswith("earlier lines not kept")
    assert {"dir": "c", "text": "PASS <redacted 6 octets>"} in [{"dir": e["dir"], "text": e["text"]} for e in got]
    assert "authenticated as carol@example.test: session traced from its start" in [e["text"] for e in got]
    assert "secret" not in rec.path.read_text()


def test_live_watcher_gets_tagged_entries(tmp_path: Path) -> None:
    tracer = Tracer(TraceSection(), tmp_path)
    seen: list[dict[str, Any]] = []
    tracer.watch("Erin@Example.test", seen.append)
    rec = tracer.start("imap", "127.0.0.1", "127.0.0.1:143", 5555)
    assert rec is not None
    rec.data("s", b"* OK ready\r\n")
    rec.data("c", b'a LOGIN erin@example.test "pw"\r\n')
    rec.data("s", b"a OK done\r\n")
    rec.data("c", b"b LOGOUT\r\n")
    tracer.unwatch("erin@example.test", seen.append)
    rec.data("s", b"* BYE\r\n")
    rec.close()
    texts = [e["text"] for e in seen]
    assert texts[:4] == [texts[0], "* OK ready", "a LOGIN erin@example.test <redacted 4 octets>", "a OK done"]
    assert "b LOGOUT" in texts and "* BYE" not in texts
    assert {e["session"] for e in seen} == {rec.id} and seen[-1]["user"] == "erin@example.test"


def test_expire(tmp_path: Path) -> None:
    now = time.time()
    old = tmp_path / time.strftime("%Y-%m-%d", time.gmtime(now - 10 * 86400))
    new = tmp_path / time.strftime("%Y-%m-%d", time.gmtime(now))
    old.mkdir()
    new.mkdir()
    (old / "a.jsonl").write_text("x" * 10)
    for i in range(3):
        f = new / f"s{i}.jsonl"
        f.write_text("y" * 100)
        os.utime(f, (now + i, now + i))
    assert expire(tmp_path, retention_days=7, max_total_bytes=250, now=now) == 2
    assert not old.exists()
    assert sorted(p.name for p in new.iterdir()) == ["s1.jsonl", "s2.jsonl"]
