"""One target in one process: replay its saved crashes, then fuzz it with atheris.

``python -m fuzz.worker TARGET --runs N --corpus-root DIR --workdir DIR``. Started by
``python -m fuzz``; libFuzzer's output goes to stderr, which the driver reads for the count of
inputs tried (``stat::number_of_executed_units``) and the crash file written.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path
from types import ModuleType

import atheris

from fuzz import TARGETS

CRASH_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


def load(name: str, instrument: bool) -> ModuleType:
    if not instrument:
        return importlib.import_module(f"fuzz.targets.{name}")
    with atheris.instrument_imports(include=["courriel", f"fuzz.targets.{name}"]):
        return importlib.import_module(f"fuzz.targets.{name}")


def replay(mod: ModuleType, crashes: Path) -> int:
    """Run every saved crash input again; returns how many still fail."""
    failed = 0
    files = sorted(
        p for p in crashes.glob("*") if p.is_file() and p.name.startswith(CRASH_PREFIXES)
    )
    for path in files:
        try:
            mod.test_one(path.read_bytes())
        except Exception:
            failed += 1
            print(f"fuzz: replay of {path} still fails:", file=sys.stderr)
            traceback.print_exc()
    print(f"fuzz: replayed {len(files)} saved crash input(s), {failed} failing", file=sys.stderr)
    return failed


def write_dict(tokens: list[bytes], path: Path) -> None:
    """A libFuzzer dictionary: one quoted token per line, every octet hex-escaped."""
    lines = ['"' + "".join(f"\\x{b:02x}" for b in tok) + '"' for tok in tokens if tok]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m fuzz.worker")
    ap.add_argument("target", choices=sorted(TARGETS))
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--corpus-root", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0, help="libFuzzer -seed (0: random)")
    ap.add_argument("--replay-only", action="store_true")
    args = ap.parse_args(argv)
    target = TARGETS[args.target]
    seeds = args.corpus_root / target.name / "seeds"
    crashes = args.corpus_root / target.name / "crashes"
    work = args.workdir / target.name
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)

    mod = load(target.name, instrument=not args.replay_only)
    setup = getattr(mod, "setup", None)
    if setup is not None:
        setup(work)
    if replay(mod, crashes):
        raise SystemExit(1)
    if args.replay_only:
        raise SystemExit(0)

    flags = [
        f"-max_len={target.max_len}",
        f"-artifact_prefix={crashes}/",
        "-timeout=120",
        "-rss_limit_mb=3072",
        "-print_final_stats=1",
        f"-seed={args.seed}" if args.seed else "",
        f"-runs={args.runs}" if args.runs else "",
        f"-max_total_time={args.seconds}" if args.seconds else "",
    ]
    tokens = getattr(mod, "TOKENS", None)
    if tokens:
        dict_path = work / "tokens.dict"
        write_dict(list(tokens), dict_path)
        flags.append(f"-dict={dict_path}")
    dirs = [str(corpus)] + ([str(seeds)] if seeds.is_dir() else [])
    atheris.Setup([sys.argv[0], *[f for f in flags if f], *dirs], mod.test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
