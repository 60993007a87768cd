"""``python -m fuzz``: run the fuzz targets, each in its own process, and report the counts.

Long mode (``make fuzz``): LONG_RUNS inputs per target. ``--short``: each target's short
count (``make test`` runs this through tests/fuzz/test_fuzz_short.py). Exit status 1 when a
target crashed, broke an invariant, or a saved crash input still fails.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fuzz import LONG_RUNS, TARGETS, Target

ROOT = Path(__file__).resolve().parent.parent
_UNITS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(r"Done (\d+) runs in")
_STATUS = re.compile(r"^#(\d+)\s", re.M)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


@dataclass(slots=True)
class Result:
    target: str
    runs: int
    seconds: float
    returncode: int
    log: Path
    artifacts: list[str]
    stats: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def parse_log(text: str) -> tuple[int, list[str]]:
    """(inputs tried, crash files written) from libFuzzer's output."""
    m = _UNITS.search(text) or _DONE.search(text)
    if m:
        runs = int(m.group(1))
    else:  # a crash: the last status line is the best count there is
        status = _STATUS.findall(text)
        runs = int(status[-1]) if status else 0
    return runs, _ARTIFACT.findall(text)


def command(
    target: Target, runs: int, seconds: int, corpus_root: Path, workdir: Path, seed: int
) -> list[str]:
    cmd = [sys.executable, "-m", "fuzz.worker", target.name, "--corpus-root", str(corpus_root),
           "--workdir", str(workdir)]  # fmt: skip
    if runs:
        cmd += ["--runs", str(runs)]
    if seconds:
        cmd += ["--seconds", str(seconds)]
    if seed:
        cmd += ["--seed", str(seed)]
    return cmd


def run_all(targets: list[Target], runs: int | None, seconds: int, jobs: int, corpus_root: Path,
            workdir: Path, seed: int) -> list[Result]:  # fmt: skip
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    pending = list(targets)
    running: dict[str, tuple[subprocess.Popen[bytes], float, Path]] = {}
    results: list[Result] = []
    workdir.mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and len(running) < jobs:
            t = pending.pop(0)
            n = t.short_runs if runs is None else runs
            log = workdir / f"{t.name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(command(t, n, seconds, corpus_root, workdir, seed), cwd=ROOT, env=env,
                                        stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            running[t.name] = (proc, time.monotonic(), log)
            print(f"fuzz: {t.name}: started ({n or 'unbounded'} inputs{f', {seconds} s max' if seconds else ''})",
                  flush=True)  # fmt: skip
        time.sleep(0.2)
        for name, (proc, start, log) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            text = log.read_text(errors="replace")
            count, artifacts = parse_log(text)
            stats = re.findall(r"^fuzz-stats: (.*)$", text, re.M)
            res = Result(name, count, time.monotonic() - start, proc.returncode, log, artifacts,
                         stats[-1] if stats else "")  # fmt: skip
            results.append(res)
            state = "ok" if res.ok else f"FAILED (exit {proc.returncode})"
            print(f"fuzz: {name}: {state}: {count} inputs in {res.seconds:.1f} s", flush=True)
            if not res.ok:
                tail = "\n".join(text.splitlines()[-40:])
                print(f"--- {log} (last lines) ---\n{tail}\n---", flush=True)
    return results


def report(results: list[Result], wall: float) -> None:
    print(f"\n{'target':<16}{'inputs':>12}{'seconds':>10}{'inputs/s':>10}  result")
    for r in sorted(results, key=lambda r: r.target):
        rate = r.runs / r.seconds if r.seconds else 0.0
        print(
            f"{r.target:<16}{r.runs:>12}{r.seconds:>10.1f}{rate:>10.0f}  {'ok' if r.ok else 'FAILED'}"
        )
        if r.stats:
            print(f"{'':<16}{r.stats}")
        for a in r.artifacts:
            print(f"{'':<16}crash input saved: {a}")
    total = sum(r.runs for r in results)
    print(f"{'total':<16}{total:>12}{wall:>10.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    ap.add_argument("--short", action="store_true", help="a bounded count per target (make test)")
    ap.add_argument(
        "--runs", type=int, help=f"inputs per target (default {LONG_RUNS:,}, or each short count)"
    )
    ap.add_argument("--seconds", type=int, default=0, help="stop each target after this long")
    ap.add_argument(
        "--target", action="append", choices=sorted(TARGETS), help="run only these (repeatable)"
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="targets run at once")
    ap.add_argument("--corpus-root", type=Path, default=ROOT / "tests" / "corpus")
    ap.add_argument("--workdir", type=Path, help="libFuzzer corpora and logs (default: a temporary "
                    "directory in short mode, $TMPDIR/courriel-fuzz otherwise)")  # fmt: skip
    ap.add_argument(
        "--seed", type=int, default=0, help="libFuzzer -seed (default random; short mode 1)"
    )
    ap.add_argument(
        "--write-seeds", action="store_true", help="regenerate tests/corpus/*/seeds and exit"
    )
    args = ap.parse_args(argv)
    if args.write_seeds:
        from fuzz.seeds import write_seeds

        for name, n in write_seeds(args.corpus_root).items():
            print(f"fuzz: {name}: {n} seed files")
        return 0
    names = args.target or [n for n, t in TARGETS.items() if not t.hidden]
    targets = [TARGETS[n] for n in names]
    runs: int | None = args.runs if args.runs is not None else (None if args.short else LONG_RUNS)
    seed = args.seed or (1 if args.short else 0)
    start = time.monotonic()
    if args.workdir is None and args.short:
        with tempfile.TemporaryDirectory(prefix="courriel-fuzz-") as tmp:
            results = run_all(
                targets, runs, args.seconds, args.jobs, args.corpus_root, Path(tmp), seed
            )
            report(results, time.monotonic() - start)
    else:
        workdir = args.workdir or Path(tempfile.gettempdir()) / "courriel-fuzz"
        results = run_all(targets, runs, args.seconds, args.jobs, args.corpus_root, workdir, seed)
        report(results, time.monotonic() - start)
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
