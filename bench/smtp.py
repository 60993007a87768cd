"""SMTP delivery: courriel's MX beside Postfix delivering to Maildir, driven by smtp-source.

Both servers run on loopback in the same run. ``smtp-source`` (Postfix's load tool) sends
5 KB messages, one per connection, from 1, 10 and 50 concurrent sessions. "accepted" is
messages per second until smtp-source has its last 250 reply; "delivered" until every
message is durably in the recipient's mailbox (for courriel that is the same moment: the
250 comes after the store's commit; Postfix queues first, then its virtual agent writes
the Maildir). Reports msg/s, courriel's CPU per message, and the ratio courriel / Postfix,
and writes the table to docs/benchmarks.md.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.postfix_peer import PostfixPeer, available
from tests.harness import CourrielServer, free_port

SMTP_SOURCE = "/usr/sbin/smtp-source"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
MARK_BEGIN = "<!-- bench/smtp.py begin -->"
MARK_END = "<!-- bench/smtp.py end -->"
SIZE = 5 * 1024
#: Rounds per concurrency level in a full run (medians reported).
REPEAT = 3

Row = tuple[int, float, float, float, float, float]  # conc, ours acc, ours del, pf acc, pf del, cpu ms


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def smtp_source(port: int, n: int, conc: int, rcpt: str) -> float:
    """Seconds smtp-source takes to send ``n`` messages (all must be accepted)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [SMTP_SOURCE, "-s", str(conc), "-m", str(n), "-l", str(SIZE), "-f", "sender@remote.test",
         "-t", rcpt, "-M", "client.test", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or proc.stderr.strip():
        raise RuntimeError(f"smtp-source failed: {proc.stdout}{proc.stderr}")
    return elapsed


def _inbox_count(data: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{data / 'courriel.db'}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT messages FROM mailboxes WHERE name = 'INBOX' AND user_id ="
            " (SELECT id FROM users WHERE address = 'u@bench.test')"
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


def _one_round(srv: CourrielServer, pid: int, peer: PostfixPeer, n: int, conc: int) -> tuple[float, float, float, float]:
    """(courriel msg/s, courriel CPU ms per message, Postfix accepted msg/s, delivered msg/s)."""
    before = _inbox_count(srv.data)
    cpu0 = _cpu_seconds(pid)
    t = smtp_source(srv.port("smtp"), n, conc, "u@bench.test")
    cpu = (_cpu_seconds(pid) - cpu0) / n * 1000
    if _inbox_count(srv.data) - before != n:
        raise RuntimeError("courriel did not store every accepted message")
    pf_before = peer.maildir_count()
    start = time.perf_counter()
    t_pf = smtp_source(peer.port, n, conc, "u@bench.test")
    deadline = time.monotonic() + 300
    while peer.maildir_count() - pf_before < n:
        if time.monotonic() > deadline:
            raise RuntimeError("Postfix did not deliver everything:\n" + peer.log()[-2000:])
        time.sleep(0.005)
    return n / t, cpu, n / t_pf, n / (time.perf_counter() - start)


def run(quick: bool = False) -> list[Row]:
    if not os.access(SMTP_SOURCE, os.X_OK) or not available():
        raise RuntimeError("bench/smtp.py needs Debian's postfix (scripts/test-deps) and root")
    n = 100 if quick else 2000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        srv = CourrielServer(Path(tmp), users={"u@bench.test": "pw"}, domain="bench.test", only=("smtp",))
        srv.env["COURRIEL_SERVER_LOG_LEVEL"] = "warning"  # one log line per message costs CPU here
        srv.env["COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP"] = "1000"
        srv.start()
        peer = PostfixPeer(free_port()).start()
        try:
            assert srv.proc is not None
            pid = srv.proc.pid
            print(f"SMTP delivery, smtp-source, {SIZE // 1024} KB messages, {n} per run, one per connection")
            print(f"{'sessions':>8} {'courriel msg/s':>15} {'CPU ms/msg':>10} {'Postfix acc/s':>14} {'Postfix del/s':>14} {'ratio':>6}")
            for conc in (1, 10, 50):
                samples: list[tuple[float, float, float, float]] = []
                for _ in range(1 if quick else REPEAT):  # interleaved, medians: the machine is shared
                    samples.append(_one_round(srv, pid, peer, n, conc))
                ours, cpu, pf_acc, pf_del = (statistics.median(col) for col in zip(*samples))
                rows.append((conc, ours, ours, pf_acc, pf_del, cpu))
                print(f"{conc:>8} {ours:>15.0f} {cpu:>10.2f} {pf_acc:>14.0f} {pf_del:>14.0f} {ours / pf_del:>6.2f}")
        finally:
            peer.stop()
            srv.stop()
    if not quick:
        write_doc(rows, n)
    return rows


def write_doc(rows: list[Row], n: int) -> None:
    cpu_model = ""
    try:
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu_model = m.group(1).strip() if m else ""
    except OSError:
        pass
    lines = [
        MARK_BEGIN,
        "## SMTP delivery (`bench/smtp.py`)",
        "",
        f"smtp-source, {SIZE // 1024} KB messages, one per connection, {n} per run, medians of {REPEAT}",
        "interleaved runs; courriel's MX (durable in the store before the 250) beside Postfix",
        "delivering to Maildir (virtual), same run, loopback,",
        f"{os.cpu_count()} CPUs ({cpu_model}), load average {os.getloadavg()[0]:.1f} at the end of the run.",
        "Ratio: courriel / Postfix delivered.",
        "",
        "| sessions | courriel msg/s (accepted = stored) | courriel CPU ms/msg | Postfix accepted msg/s | Postfix delivered msg/s | ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for conc, ours, _, pf_acc, pf_del, cpu in rows:
        lines.append(f"| {conc} | {ours:.0f} | {cpu:.2f} | {pf_acc:.0f} | {pf_del:.0f} | {ours / pf_del:.2f} |")
    lines.append(MARK_END)
    section = "\n".join(lines) + "\n"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nWritten by `make bench`; each section by its benchmark.\n\n"
    if MARK_BEGIN in text and MARK_END in text:
        head, _, rest = text.partition(MARK_BEGIN)
        _, _, tail = rest.partition(MARK_END + "\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
