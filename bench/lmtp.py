"""Behind an MTA: Postfix delivering into courriel over LMTP, beside Postfix delivering to its
own Maildirs (virtual), and courriel's LMTP listener driven directly.

All in one run on loopback, 5 KB messages from ``smtp-source`` (one per connection), at 1, 10
and 50 concurrent sessions:

- "Postfix → courriel": smtp-source → Postfix (lookups through courriel's socketmap at RCPT)
  → LMTP → courriel; msg/s until every message is durably in courriel's INBOX.
- "Postfix → Maildir": the same Postfix setup with its ``virtual`` agent writing Maildirs
  (the reference, as in bench/smtp.py); msg/s until every file is there.
- "LMTP direct": ``smtp-source -L`` straight into courriel's LMTP listener (stored before
  each 250), with courriel's CPU per message.

Ratio: Postfix → courriel / Postfix → Maildir (1.0: courriel behind Postfix costs the MTA
nothing compared with its own mailbox delivery).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.postfix_peer import PostfixPeer, available
from bench.smtp import DOC, SIZE, SMTP_SOURCE, _cpu_seconds, _inbox_count
from tests.harness import CourrielServer, free_port

REPEAT = 3
MARK_BEGIN = "<!-- bench/lmtp.py begin -->"
MARK_END = "<!-- bench/lmtp.py end -->"

Row = tuple[int, float, float, float, float]  # sessions, via postfix, maildir, direct, cpu ms


def source(port: int, n: int, conc: int, rcpt: str, lmtp: bool = False) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [SMTP_SOURCE, *(["-L"] if lmtp else []), "-s", str(conc), "-m", str(n), "-l", str(SIZE),
         "-f", "sender@remote.test", "-t", rcpt, "-M", "client.test", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0 or proc.stderr.strip():
        raise RuntimeError(f"smtp-source failed: {proc.stdout}{proc.stderr}")
    return time.perf_counter() - start


def wait_count(count: Callable[[], int], target: int, what: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + 300
    while count() < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not everything delivered:\n{log()[-2000:]}")
        time.sleep(0.005)


def _round(
    srv: CourrielServer, pid: int, front: PostfixPeer, ref: PostfixPeer, n: int, conc: int
) -> tuple[float, ...]:
    base = _inbox_count(srv.data)
    start = time.perf_counter()
    source(front.port, n, conc, "u@bench.test")
    wait_count(lambda: _inbox_count(srv.data), base + n, "Postfix → courriel", front.log)
    via = n / (time.perf_counter() - start)
    ref_base = ref.maildir_count()
    start = time.perf_counter()
    source(ref.port, n, conc, "u@bench.test")
    wait_count(ref.maildir_count, ref_base + n, "Postfix → Maildir", ref.log)
    maildir = n / (time.perf_counter() - start)
    base = _inbox_count(srv.data)
    cpu0 = _cpu_seconds(pid)
    t = source(srv.port("lmtp"), n, conc, "u@bench.test", lmtp=True)
    cpu = (_cpu_seconds(pid) - cpu0) / n * 1000
    if _inbox_count(srv.data) - base != n:
        raise RuntimeError("courriel did not store every message it accepted over LMTP")
    return via, maildir, n / t, cpu


def run(quick: bool = False) -> list[Row]:
    if not os.access(SMTP_SOURCE, os.X_OK) or not available():
        raise RuntimeError("bench/lmtp.py needs Debian's postfix (scripts/test-deps) and root")
    n = 50 if quick else 1000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        srv = CourrielServer(
            Path(tmp), users={"u@bench.test": "pw"}, domain="bench.test", only=("lmtp", "lookup")
        )
        srv.env["COURRIEL_SERVER_LOG_LEVEL"] = "warning"
        srv.env["COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP"] = "1000"
        srv.start()
        lookup = srv.port("lookup")
        front = PostfixPeer(
            free_port(),
            extra_main=(
                f"virtual_mailbox_domains = socketmap:inet:127.0.0.1:{lookup}:domains\n"
                f"virtual_mailbox_maps = socketmap:inet:127.0.0.1:{lookup}:recipients\n"
                f"virtual_transport = lmtp:inet:127.0.0.1:{srv.port('lmtp')}\n"
            ),
        )
        ref = PostfixPeer(free_port())
        try:
            front.start()
            ref.start()
            assert srv.proc is not None
            print(
                f"Behind Postfix: LMTP into courriel vs Maildir, smtp-source {SIZE // 1024} KB, {n} per run"
            )
            print(
                f"{'sessions':>8} {'PF→courriel/s':>14} {'PF→Maildir/s':>13} {'ratio':>6} {'LMTP direct/s':>14} {'CPU ms/msg':>10}"
            )
            for conc in (1, 10, 50):
                samples = [
                    _round(srv, srv.proc.pid, front, ref, n, conc)
                    for _ in range(1 if quick else REPEAT)
                ]
                via, maildir, direct, cpu = (statistics.median(col) for col in zip(*samples))
                rows.append((conc, via, maildir, direct, cpu))
                print(
                    f"{conc:>8} {via:>14.0f} {maildir:>13.0f} {via / maildir:>6.2f} {direct:>14.0f} {cpu:>10.2f}"
                )
        finally:
            front.stop()
            ref.stop()
            srv.stop()
    if not quick:
        write_doc(rows, n)
    return rows


def write_doc(rows: list[Row], n: int) -> None:
    lines = [
        MARK_BEGIN,
        "## Behind Postfix: LMTP delivery (`bench/lmtp.py`)",
        "",
        f"smtp-source, {SIZE // 1024} KB messages, one per connection, {n} per run, medians of {REPEAT}",
        "interleaved runs, loopback, same run: Postfix delivering into courriel over LMTP (recipients",
        "looked up in courriel's socketmap at RCPT; msg/s until all are in courriel's INBOX) beside",
        "the same Postfix delivering to Maildir; and smtp-source -L straight into courriel's LMTP.",
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end of the run.",
        "Ratio: Postfix → courriel / Postfix → Maildir.",
        "",
        "| sessions | Postfix → courriel msg/s | Postfix → Maildir msg/s | ratio | LMTP direct msg/s | courriel CPU ms/msg (direct) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for conc, via, maildir, direct, cpu in rows:
        lines.append(
            f"| {conc} | {via:.0f} | {maildir:.0f} | {via / maildir:.2f} | {direct:.0f} | {cpu:.2f} |"
        )
    lines.append(MARK_END)
    section = "\n".join(lines) + "\n"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if MARK_BEGIN in text and MARK_END in text:
        head, _, rest = text.partition(MARK_BEGIN)
        _, _, tail = rest.partition(MARK_END + "\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
