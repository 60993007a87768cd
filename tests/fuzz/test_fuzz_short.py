"""The short mode of ``make fuzz``: every target for a bounded number of inputs, each in its
own ``python -m fuzz`` process (atheris instruments courriel there, not in pytest), after
replaying the crash inputs saved under tests/corpus/<target>/crashes.

Also checks the machinery itself with the ``selftest`` target: a crash fails the run, its
input is saved under crashes/, and the next run fails again on the replay.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import TARGETS

ROOT = Path(__file__).resolve().parents[2]
VISIBLE = sorted(n for n, t in TARGETS.items() if not t.hidden)


def run_fuzz(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fuzz", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=280, check=False)  # fmt: skip


@pytest.mark.parametrize("target", VISIBLE)
def test_short_run(target: str, tmp_path: Path) -> None:
    seeds = ROOT / "tests" / "corpus" / target / "seeds"
    assert len(list(seeds.iterdir())) >= 5, (
        f"{target}: seed corpus missing (python -m fuzz --write-seeds)"
    )
    proc = run_fuzz("--short", "--target", target, "--workdir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-4000:]
    row = re.search(rf"^{target}\s+(\d+)\s", proc.stdout, re.M)
    assert row is not None, proc.stdout
    assert int(row.group(1)) >= TARGETS[target].short_runs  # libFuzzer ran them all


def test_crash_fails_the_run_and_is_saved_then_replayed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "selftest" / "seeds").mkdir(parents=True)
    (corpus / "selftest" / "seeds" / "ok").write_bytes(b"hello")
    proc = run_fuzz("--target", "selftest", "--runs", "50", "--corpus-root", str(corpus), "--workdir",
                    str(tmp_path / "work"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]

    (corpus / "selftest" / "seeds" / "bad").write_bytes(b"CRASH!")
    proc = run_fuzz("--target", "selftest", "--runs", "50", "--corpus-root", str(corpus), "--workdir",
                    str(tmp_path / "work2"))  # fmt: skip
    assert proc.returncode == 1
    saved = list((corpus / "selftest" / "crashes").glob("crash-*"))
    assert [p.read_bytes() for p in saved] == [b"CRASH!"]
    assert "crash input saved" in proc.stdout

    # The seed is gone; the saved crash alone still fails the next run, before any fuzzing.
    (corpus / "selftest" / "seeds" / "bad").unlink()
    shutil.rmtree(tmp_path / "work2")
    proc = run_fuzz("--target", "selftest", "--runs", "50", "--corpus-root", str(corpus), "--workdir",
                    str(tmp_path / "work3"))  # fmt: skip
    assert proc.returncode == 1
    assert "still fails" in (tmp_path / "work3" / "selftest.log").read_text()
