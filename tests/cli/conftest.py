from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COURRIEL = [sys.executable, "-m", "courriel"]


def courriel(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURRIEL_")}
    proc = subprocess.run(
        [*COURRIEL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"courriel {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    courriel("init", str(d), "--domain", "example.test", "--hostname", "mail.example.test")
    return d
