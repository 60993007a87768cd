"""Coverage-guided fuzzing of courriel's parsers and protocol sessions with atheris.

``python -m fuzz [--short] [--runs N] [--target NAME]`` (``make fuzz``) runs every target of
:data:`TARGETS` in its own process (atheris instruments ``courriel`` there, never in the
caller), in parallel up to the core count, each from its seed corpus under
``tests/corpus/<target>/seeds``. A crash (an exception or a broken invariant) fails the
run and libFuzzer writes the input to ``tests/corpus/<target>/crashes/``; every run first
replays those files, so a fixed crash stays fixed.

Nothing here imports ``courriel`` at module level: the worker must import it inside
``atheris.instrument_imports`` to get coverage feedback.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Inputs per target: the long mode (``make fuzz``) and the short one (``make test``).
LONG_RUNS = 1_000_000


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    short_runs: int  # inputs in the short mode, chosen to take a few seconds each
    max_len: int  # libFuzzer -max_len
    hidden: bool = False  # not run unless named (the self-test target)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("imap_command", 6000, 4096),
        Target("imap_session", 400, 4096),
        Target("smtp_command", 6000, 2048),
        Target("smtp_data", 5000, 4096),
        Target("pop3_command", 6000, 4096),
        Target("mime", 1500, 16384),
        Target("sieve", 4000, 4096),
        Target("headers", 4000, 2048),
        Target("jmap", 3000, 8192),
        Target("selftest", 50, 64, hidden=True),
    )
}
