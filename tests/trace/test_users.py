"""Per-user tracing: [trace] users keeps a session from its start once the user logs in (the
pre-login lines were buffered), other users' sessions leave nothing; `courriel trace --user`
streams a user's live sessions from the running server."""

from __future__ import annotations

import imaplib
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.harness import CourrielServer
from tests.trace.wire import Tap, check_against_wire, transcript_of

ALICE, BOB = "alice@example.test", "bob@example.test"
PW = {ALICE: "alice-Pw-123", BOB: "bob-Pw-456"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    env = {"COURRIEL_TRACE_USERS": BOB}
    with CourrielServer(tmp_path_factory.mktemp("trace-users"), users=PW, plaintext_auth=True, env=env) as s:
        yield s


def imap_session(srv: CourrielServer, user: str) -> Tap:
    tap = Tap(srv.port("imap"))
    imap = imaplib.IMAP4("127.0.0.1", tap.port)
    imap.capability()
    imap.login(user, PW[user])
    imap.select("INBOX")
    imap.logout()
    tap.join()
    return tap


def test_traced_user_kept_from_start_others_not(srv: CourrielServer) -> None:
    other = imap_session(srv, ALICE)
    tap = imap_session(srv, BOB)
    entries = transcript_of(srv.data / "traces", tap.upstream_port)
    check_against_wire(entries, tap.wire)  # the greeting and CAPABILITY (before LOGIN) are there
    texts = [e["text"] for e in entries]
    assert texts[1].startswith("* OK")
    assert f"authenticated as {BOB}: session traced from its start" in texts
    files = list((srv.data / "traces").glob("*/*.jsonl"))
    assert not any(f"127.0.0.1:{other.upstream_port}," in f.read_text() for f in files)
    assert not any(PW[BOB] in f.read_text() for f in files)


def test_live_trace_cli(srv: CourrielServer) -> None:
    cmd = [sys.executable, "-m", "courriel", "-d", str(srv.data), "trace", "--user", ALICE, "--json", "--count", "11"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=srv.env)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "waiting for sessions" in proc.stderr.readline()  # connected and registered
        tap = imap_session(srv, ALICE)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    entries = [json.loads(line) for line in out.splitlines()]
    assert len(entries) == 11
    assert {e["user"] for e in entries} == {ALICE}
    assert entries[0]["dir"] == "event" and f"127.0.0.1:{tap.upstream_port}," in entries[0]["text"]
    texts = [e["text"] for e in entries]
    assert any(t.endswith(f" LOGIN {ALICE} <redacted {len(PW[ALICE]) + 2} octets>") for t in texts), texts
    assert texts[-1] == f"authenticated as {ALICE}: session traced from its start"
    assert PW[ALICE] not in out
