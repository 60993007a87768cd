"""Real clients we did not write: swaks (STARTTLS, AUTH, pipelining) and msmtp."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness import CourrielServer
from tests.smtp.conftest import delivered, unique
from tests.tools import need


def swaks(server: CourrielServer, *args: str, data: bytes) -> subprocess.CompletedProcess[str]:
    exe = need("swaks")
    return subprocess.run(
        [exe, "--server", "127.0.0.1", "--data", "-", "--helo", "swaks.test", *args],
        input=data[:-2].decode(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_swaks_starttls_auth_pipelining(server: CourrielServer) -> None:
    msg = unique("swaks", "bob@example.test")
    proc = swaks(
        server, "--port", str(server.port("submission")), "--tls", "--auth", "LOGIN",
        "--auth-user", "bob@example.test", "--auth-password", "bob-pw", "--pipeline",
        "--from", "bob@example.test", "--to", "alice@example.test,carol@example.test", data=msg,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "<~  250 2.0.0 OK: queued as" in proc.stdout
    for user in ("alice", "carol"):
        received = delivered(server, f"{user}@example.test", msg)[0][1].decode()
        assert "with ESMTPSA" in received and "(authenticated as bob@example.test)" in received


def test_swaks_auth_plain_before_tls_when_allowed(server: CourrielServer) -> None:
    """submission.allow_plaintext_auth (on in these tests) permits AUTH without TLS."""
    msg = unique("swaks plain", "carol@example.test")
    proc = swaks(
        server, "--port", str(server.port("submission")), "--auth", "PLAIN",
        "--auth-user", "carol@example.test", "--auth-password", "carol-pw",
        "--from", "carol@example.test", "--to", "alice@example.test", data=msg,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    received = delivered(server, "alice@example.test", msg)[0][1].decode()
    assert " with ESMTPA id " in received


def test_swaks_relay_refused(server: CourrielServer) -> None:
    proc = swaks(
        server, "--port", str(server.port("smtp")), "--from", "x@remote.test", "--to", "y@elsewhere.test",
        data=unique("relay"),
    )  # fmt: skip
    assert proc.returncode != 0
    assert "<** 554 5.7.1 Relay access denied" in proc.stdout


def test_msmtp_submits(server: CourrielServer, tmp_path: Path) -> None:
    exe = need("msmtp")
    cfg = tmp_path / "msmtprc"
    cfg.write_text(
        "defaults\ntls on\ntls_starttls on\ntls_certcheck off\nauth on\nset_date_header off\nset_from_header off\n"
        f"account courriel\nhost 127.0.0.1\nport {server.port('submission')}\n"
        "from alice@example.test\nuser alice@example.test\npassword alice-pw\n"
        "account default : courriel\n"
    )
    cfg.chmod(0o600)
    msg = unique("msmtp")
    proc = subprocess.run(
        [exe, "-C", str(cfg), "bob@example.test"], input=msg, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    received = delivered(server, "bob@example.test", msg)[0][1].decode()
    assert "with ESMTPSA" in received and "(using TLSv1.3" in received
