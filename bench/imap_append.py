"""IMAP APPEND of one 5 KB message into a 1k, 10k and 100k-message INBOX, beside Dovecot.

Each APPEND is timed from sending it (LOGIN and SELECT INBOX done, the literal non-
synchronizing) to its tagged OK, which courriel sends only once the message file and its
row are on disk. Both servers up, rounds alternating between them after a warm-up; the
figure is the median per APPEND, and the server's CPU per APPEND (from /proc, user +
system, all threads) is printed beside it: on a shared machine the CPU time is the steady
figure, the wall-clock one follows the load. The appended messages are expunged at the end,
so the mailboxes keep their size from run to run.

Mailboxes: the 100k one is a copy of ``bench/imap_scale.py``'s cached INBOX (its database
only: APPEND reads no message file), the smaller ones are generated the same way, all
cached under ``$COURRIEL_BENCH_CACHE``. ``--quick``: 300 messages, in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from bench.imap_scale import (
    CACHE,
    PASSWORD,
    USER,
    RawImap,
    _dovecot,
    _pids_of,
    cached_dirs,
    fill_courriel,
    fill_maildir,
)

SIZES = (1_000, 10_000, 100_000)
#: Seconds after a round before reading the server's CPU time: longer than the full-text
#: index's batching delay and the WAL checkpointer's interval (courriel.store.sqlite).
SETTLE = 1.5


def _cpu(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (all their threads)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _build(root: Path, n: int) -> None:
    """A courriel data directory and a Maildir with the same n generated messages."""
    from tests.harness import CourrielServer

    srv = CourrielServer(root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("imap",))
    srv.start()
    srv.stop()
    if n == 100_000:  # the big one exists already: copy its database, not its files
        src = cached_dirs(n) / "courriel" / "data"
        shutil.copyfile(src / "courriel.db", srv.data / "courriel.db")
        for suffix in ("-wal", "-shm"):
            (srv.data / f"courriel.db{suffix}").unlink(missing_ok=True)
    else:
        asyncio.run(fill_courriel(srv.data, n))
        fill_maildir(root / "maildir", n)


def _data_dirs(n: int) -> tuple[Path, Path]:
    """(courriel root, Dovecot root): cached, built when missing (marker file last)."""
    root = CACHE / f"append-{n}"
    if not (root / "ready").exists():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        _build(root, n)
        (root / "ready").write_text("ok\n")
    return root, (cached_dirs(n) if n == 100_000 else root)


def _appends(c: RawImap, count: int, message: bytes) -> tuple[list[float], list[int]]:
    times, uids = [], []
    for _ in range(count):
        t = time.perf_counter()
        reply = c.cmd("APPEND INBOX", message)
        times.append(time.perf_counter() - t)
        uids.append(int(reply.split(b"[APPENDUID ", 1)[1].split(b"]", 1)[0].split()[1]))
    return times, uids


def _remove(c: RawImap, uids: list[int]) -> None:
    for i in range(0, len(uids), 500):
        chunk = ",".join(map(str, uids[i : i + 500]))
        c.cmd(f"UID STORE {chunk} +FLAGS.SILENT (\\Deleted)")
        c.cmd(f"UID EXPUNGE {chunk}")


def measure(n: int, courriel_root: Path, dovecot_root: Path | None, tmp: Path, rounds: int,
            per_round: int) -> dict[str, dict[str, float]]:  # fmt: skip
    from bench.imap import APPENDED
    from tests.harness import CourrielServer

    env = {"COURRIEL_IMAP_MAX_CONNECTIONS_PER_USER": "1000", "COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP": "1000"}
    srv = CourrielServer(courriel_root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("imap",),
                         plaintext_auth=True, env=env)  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    with srv:
        assert srv.proc is not None
        pid = srv.proc.pid
        dovecot = _dovecot(dovecot_root, tmp, n < 100_000) if dovecot_root is not None else None
        try:
            servers: dict[str, tuple[int, Callable[[], list[int]]]] = {"courriel": (srv.port("imap"), lambda: [pid])}
            if dovecot is not None:
                servers["dovecot"] = (dovecot.port, lambda: _pids_of(("imap",)))
            clients: dict[str, RawImap] = {}
            for name, (port, _pids) in servers.items():
                c = RawImap(port)
                c.cmd(f"LOGIN {USER} {PASSWORD}")
                c.cmd("SELECT INBOX")
                clients[name] = c
            times: dict[str, list[float]] = {name: [] for name in servers}
            cpu: dict[str, float] = dict.fromkeys(servers, 0.0)
            uids: dict[str, list[int]] = {name: [] for name in servers}
            for r in range(rounds + 1):
                for name, (_port, pids) in servers.items():
                    # Dovecot takes ~50 ms per APPEND at 100k: fewer of them, same rounds
                    count = per_round if name == "courriel" or n < 100_000 else max(5, per_round // 10)
                    before = _cpu(pids())
                    t, u = _appends(clients[name], count if r else 10, APPENDED)
                    uids[name] += u
                    time.sleep(SETTLE)  # work done after the OKs (full-text batch, checkpoint) counts
                    if r:  # the first round warms up
                        cpu[name] += _cpu(pids()) - before
                        times[name] += t
            for name, c in clients.items():
                t = sorted(times[name])
                out[name] = {
                    "median_ms": t[len(t) // 2] * 1e3,
                    "p90_ms": t[len(t) * 9 // 10] * 1e3,
                    "cpu_us": cpu[name] / len(t) * 1e6,
                    "count": len(t),
                }
                _remove(c, uids[name])
                c.cmd("LOGOUT")
                c.close()
        finally:
            if dovecot is not None:
                dovecot.stop()
    return out


def run(quick: bool = False, sizes: tuple[int, ...] = SIZES) -> dict[int, dict[str, dict[str, float]]]:
    import tempfile

    results: dict[int, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # Dovecot's unprivileged processes read their files below it
        if quick:
            root = tmp / "quick"
            root.mkdir()
            _build(root, 300)
            peer = tmp / "peer"
            peer.mkdir()
            results[300] = measure(300, root, root, peer, 1, 20)
        else:
            for n in sizes:
                croot, droot = _data_dirs(n)
                peer = tmp / f"peer-{n}"
                peer.mkdir()
                results[n] = measure(n, croot, droot, peer, 3, 100)
    _report(results)
    return results


def _report(results: dict[int, dict[str, dict[str, float]]]) -> None:
    print(f"imap-append: APPEND of 5 KB into the INBOX, load average {os.getloadavg()[0]:.1f}")
    print(f"{'messages':>10}{'courriel ms':>13}{'p90':>8}{'CPU µs':>9}{'Dovecot ms':>12}{'CPU µs':>9}{'ratio':>8}")
    for n, res in results.items():
        c, d = res["courriel"], res.get("dovecot")
        line = f"{n:>10}{c['median_ms']:>13.2f}{c['p90_ms']:>8.2f}{c['cpu_us']:>9.0f}"
        if d is not None:
            line += f"{d['median_ms']:>12.2f}{d['cpu_us']:>9.0f}{d['median_ms'] / c['median_ms']:>8.2f}"
        print(line)
    print(f"{'':>10}ratio = Dovecot / courriel (>1: courriel faster); CPU: the server's, per APPEND")


if __name__ == "__main__":
    import sys

    wanted = tuple(int(a) for a in sys.argv[1:] if a.isdigit())
    run(quick="--quick" in sys.argv, sizes=wanted or SIZES)
