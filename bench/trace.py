"""Session tracing: what recording a transcript costs, courriel traced beside courriel untraced.

The same messages (bench.pop3.messages: 2-16 KB) go into two courriel servers, one with
``[trace] enabled_listeners = ["pop3"]`` (every session recorded, bodies redacted) and one
without (connections are then not wrapped at all). Measured with Python's poplib: RETR of
every message in one session, interleaved rounds, medians. Also the redaction machine alone
(POP3 RETR responses fed in 64 KB chunks), in MB/s.

The ratio is traced / untraced RETR rate (1.0: tracing is free; the target is >= 0.8). The
reference servers (Postfix, Dovecot) have no equivalent feature to compare with.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.pop3 import USER, _fill, _median, messages, retr_all
from courriel.trace.redact import machine_for
from tests.harness import CourrielServer


def machine_rate(msgs: list[bytes], repeat: int) -> float:
    """MB/s of server output through the POP3 redaction machine."""
    stream = b"".join(b"+OK\r\n" + m.replace(b"\r\n.", b"\r\n..") + b".\r\n" for m in msgs)
    start = time.perf_counter()
    for _ in range(repeat):
        m = machine_for("pop3")
        for i in range(len(msgs)):
            m.feed("c", f"RETR {i + 1}\r\n".encode())
        for i in range(0, len(stream), 65536):
            m.feed("s", stream[i : i + 65536])
    return len(stream) * repeat / (time.perf_counter() - start) / 1e6


def run(quick: bool = False) -> dict[str, float]:
    count = 100 if quick else 1000
    rounds = 1 if quick else 5
    msgs = messages(count)
    megabytes = sum(len(m) for m in msgs) / 1e6
    users = {USER: "bench-pw"}
    with tempfile.TemporaryDirectory() as tmp:
        plain = CourrielServer(Path(tmp) / "plain", users=users, domain="bench.test", only=("pop3", "trace"),
                               plaintext_auth=True)  # fmt: skip
        traced = CourrielServer(Path(tmp) / "traced", users=users, domain="bench.test", only=("pop3", "trace"),
                                plaintext_auth=True, env={"COURRIEL_TRACE_ENABLED_LISTENERS": "pop3"})  # fmt: skip
        with plain, traced:
            asyncio.run(_fill(plain.data, msgs))
            asyncio.run(_fill(traced.data, msgs))
            retr_all(plain.port("pop3"), count)  # warm-up
            retr_all(traced.port("pop3"), count)
            times: dict[str, list[float]] = {"plain": [], "traced": []}
            for _ in range(rounds):
                times["plain"].append(retr_all(plain.port("pop3"), count)[0])
                times["traced"].append(retr_all(traced.port("pop3"), count)[0])
            transcripts = list((traced.data / "traces").glob("*/*.jsonl"))
            assert transcripts, "the traced server recorded nothing"
            kept = sum(p.stat().st_size for p in transcripts) / len(transcripts)
    rates = {k: count / _median(v) for k, v in times.items()}
    result = {
        "retr_per_s_plain": rates["plain"],
        "retr_per_s_traced": rates["traced"],
        "ratio": rates["traced"] / rates["plain"],
        "machine_mb_s": machine_rate(msgs, 1 if quick else 5),
        "transcript_kb": kept / 1e3,
    }
    print(f"trace: POP3 RETR of {count} messages ({megabytes:.1f} MB): untraced {rates['plain']:.0f}/s, "
          f"traced {rates['traced']:.0f}/s, ratio {result['ratio']:.2f} (traced / untraced; target >= 0.8); "
          f"redaction machine {result['machine_mb_s']:.0f} MB/s; transcript {result['transcript_kb']:.0f} KB "
          f"per session")  # fmt: skip
    return result


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
