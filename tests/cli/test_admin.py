"""The admin commands, run as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from courriel.config import load_config
from tests.cli.conftest import courriel
from tests.harness import LISTENERS, free_port


def test_init_creates_config_database_and_certificate(data_dir: Path) -> None:
    cfg = load_config(data_dir, env={})
    assert cfg.server.hostname == "mail.example.test"
    assert cfg.imap.addresses() == [("127.0.0.1", 1143)]
    assert (data_dir / "courriel.db").exists()
    assert (data_dir / "tls" / "cert.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (data_dir / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    assert courriel("-d", str(data_dir), "domain", "list").stdout.split() == ["example.test"]
    again = courriel("init", str(data_dir), check=False)
    assert again.returncode == 1 and "already initialised" in again.stderr


def test_init_production_uses_standard_ports(tmp_path: Path) -> None:
    courriel("init", str(tmp_path / "p"), "--domain", "example.org", "--production")
    cfg = load_config(tmp_path / "p", env={})
    assert cfg.smtp.addresses() == [("0.0.0.0", 25), ("::", 25)]
    assert cfg.imaps.addresses()[0] == ("0.0.0.0", 993)
    assert cfg.server.hostname == "mail.example.org"
    assert cfg.http.tls and cfg.http.addresses()[0] == ("0.0.0.0", 443)
    assert cfg.acme.http_listen == "0.0.0.0:80,[::]:80" and not cfg.acme.enabled  # ready for ACME, off


def test_users_domains_aliases(data_dir: Path) -> None:
    d = str(data_dir)
    out = courriel("-d", d, "user", "add", "alice@example.test", "--password-stdin", stdin="s3cret\n")
    assert "added user alice@example.test" in out.stdout and "s3cret" not in out.stdout
    # not a terminal and no --password-stdin: a generated password, printed once
    out = courriel("-d", d, "user", "add", "bob@example.test", stdin="")
    assert "password: " in out.stdout
    bad = courriel("-d", d, "user", "add", "eve@nowhere.test", "--password-stdin", stdin="x\n", check=False)
    assert bad.returncode == 1 and "not a local domain" in bad.stderr
    courriel("-d", d, "domain", "add", "Other.TEST")
    assert courriel("-d", d, "domain", "list").stdout.split() == ["example.test", "other.test"]
    courriel("-d", d, "alias", "add", "team@example.test", "alice@example.test", "bob@example.test")
    courriel("-d", d, "alias", "add", "@other.test", "alice@example.test")
    listing = courriel("-d", d, "alias", "list").stdout
    assert "team@example.test -> alice@example.test, bob@example.test" in listing
    assert "@other.test -> alice@example.test" in listing
    courriel("-d", d, "alias", "del", "team@example.test", "bob@example.test")
    assert "bob@example.test" not in courriel("-d", d, "alias", "list").stdout
    courriel("-d", d, "user", "passwd", "alice@example.test", "--password-stdin", stdin="other\n")
    users = courriel("-d", d, "user", "list").stdout
    assert "alice@example.test" in users and "bob@example.test" in users
    courriel("-d", d, "user", "del", "bob@example.test")
    assert "bob@example.test" not in courriel("-d", d, "user", "list").stdout
    assert courriel("-d", d, "store", "check").stdout.strip() == "store is sound"


def test_data_dir_from_environment(data_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURRIEL_")}
    env["COURRIEL_DATA"] = str(data_dir)
    out = subprocess.run([sys.executable, "-m", "courriel", "domain", "list"], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["example.test"]
    # a bad override stops the command with the key's name
    env["COURRIEL_IMAP_LISTN"] = "x"
    out = subprocess.run([sys.executable, "-m", "courriel", "domain", "list"], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "COURRIEL_IMAP_LISTN" in out.stderr


def test_serve_starts_and_stops_on_sigterm(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURRIEL_")}
    for name in LISTENERS:  # free ports, so that other servers on this machine do not matter
        env[f"COURRIEL_{name.upper()}_LISTEN"] = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "courriel", "-d", str(data_dir), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.strip() == "courriel: ready":
            break
    assert lines[0].startswith("courriel: store sqlite at")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    bad = courriel("-d", str(data_dir), "serve", "--only", "gopher", check=False)
    assert bad.returncode == 1 and "gopher" in bad.stderr
