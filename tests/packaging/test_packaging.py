"""Packaging: the wheel is complete and runs on its own; the systemd unit verifies; the
container file and its entry point hold together."""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from courriel.config import PRODUCTION_PORTS
from tests.harness import CourrielServer
from tests.tools import need

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (path,) = out.glob("courriel-*.whl")
    return path


def test_wheel_carries_the_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "courriel").rglob("*") if p.is_file()}
    wanted = {s for s in sources if not s.endswith((".pyc",)) and "__pycache__" not in s}
    missing = sorted(wanted - names)
    assert not missing, f"files of src/courriel missing from the wheel: {missing[:20]}"
    assert "courriel/py.typed" in names
    assert any(n.startswith("courriel/store/sqlite/migrations/") and n.endswith(".sql") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "courriel = courriel.cli.main:main" in zipfile.ZipFile(wheel).read(meta).decode()


def test_installed_wheel_runs_on_its_own(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    env = {"PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import courriel, sys; print(courriel.__file__)"],
        capture_output=True, text=True, env={**os.environ, **env},
    )  # fmt: skip
    assert where.stdout.startswith(str(target)), where.stdout  # the wheel's copy, not the checkout
    helped = subprocess.run([sys.executable, "-m", "courriel", "--help"], capture_output=True, text=True, env={**os.environ, **env})
    assert helped.returncode == 0 and "serve" in helped.stdout
    srv = CourrielServer(tmp_path / "srv", only=("smtp",), env=env)
    srv.start()
    try:
        with smtplib.SMTP("127.0.0.1", srv.port("smtp")) as smtp:
            refused = smtp.sendmail("x@remote.example", ["alice@example.test"], b"Subject: from the wheel\r\n\r\nhi\r\n")
        assert refused == {}
        stats = srv.cli("store", "stats").stdout
        assert re.search(r"messages\D+1\b", stats), stats
    finally:
        srv.stop()


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = need("systemd-analyze")
    text = (ROOT / "contrib" / "courriel.service").read_text()
    for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                "SystemCallFilter=@system-service", "ExecReload=/bin/kill -HUP $MAINPID", "User=courriel"):  # fmt: skip
        assert key in text, key
    courriel = shutil.which("courriel") or str(Path(sys.executable).parent / "courriel")
    unit = tmp_path / "courriel.service"
    unit.write_text(text.replace("/usr/local/bin/courriel", courriel))
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Unknown key" not in r.stderr and "nvalid" not in r.stderr, r.stderr


def test_containerfile_is_consistent() -> None:
    text = (ROOT / "Containerfile").read_text()
    instructions = [line.split(None, 1) for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    for word, arg in instructions:
        assert word in ("FROM", "WORKDIR", "COPY", "RUN", "ENV", "VOLUME", "EXPOSE", "USER", "ENTRYPOINT", "CMD"), word
        if word == "COPY" and not arg.startswith("--from"):
            *sources, _ = arg.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: no such file in the checkout"
    exposed = {int(p) for word, arg in instructions if word == "EXPOSE" for p in arg.split()}
    wanted = {port for name, port in PRODUCTION_PORTS.items() if name not in ("lmtp", "lookup")}
    assert wanted <= exposed, wanted - exposed
    users = [arg.strip() for word, arg in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_entrypoint_initialises_once(tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "courriel").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m courriel "$@"\n')
    (shim / "courriel").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "COURRIEL_DATA": str(tmp_path / "data"),
           "MAIL_DOMAIN": "example.net"}  # fmt: skip
    env = {k: v for k, v in env.items() if not k.startswith("COURRIEL_") or k == "COURRIEL_DATA"}
    entry = str(ROOT / "contrib" / "entrypoint.sh")
    first = subprocess.run([entry, "domain", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "example.net" in first.stdout
    toml = (tmp_path / "data" / "courriel.toml").read_text()
    assert 'hostname = "mail.example.net"' in toml and ":25" in toml  # --production ports
    again = subprocess.run([entry, "domain", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0 and "already initialised" not in again.stderr
    assert (tmp_path / "data" / "courriel.toml").read_text() == toml
