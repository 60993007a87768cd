"""``python -m fuzz --write-seeds``: write each target's seed inputs to tests/corpus/<target>/seeds.

Seeds come from the tests' tables of raw input (harvested from the test files) and from
each target's own list; file names are content hashes, so rewriting is idempotent.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

from fuzz import TARGETS


def write_seeds(corpus_root: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, target in TARGETS.items():
        if target.hidden:
            continue
        mod = importlib.import_module(f"fuzz.targets.{name}")
        out = corpus_root / name / "seeds"
        out.mkdir(parents=True, exist_ok=True)
        n = 0
        for data in mod.seeds():
            data = data[: target.max_len]
            (out / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
            n += 1
        counts[name] = n
    return counts
