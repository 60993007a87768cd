"""POP3: poplib RETR throughput and logins per second, courriel beside Dovecot, in one run.

The same 1,000 messages (8.9 MB, 2-16 KB, some lines starting with ".") go into a courriel
INBOX (through the store API) and into the Maildir of a private Dovecot started from
/work/shared/peers/dovecot.conf (its high-performance process model, POP3 only, on free
loopback ports). Measured with Python's poplib, after one warm-up pass:

- RETR of every message in one session (seconds, messages/s, MB/s), and the server's CPU
  time per RETR (all its processes, from /proc, login excluded);
- logins/s: connect, USER, PASS, QUIT, sequentially and from 10 threads.

The two servers are measured in interleaved rounds and the medians reported, since the
machine is shared and its load drifts.

Ratios are courriel / Dovecot rates (above 1: courriel is faster). Dovecot's passwords are
stored in the clear (scheme=PLAIN in the reference configuration); courriel checks an
argon2id hash on each login, which costs ~20 ms of CPU on purpose.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import poplib
import random
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from courriel.store.api import INBOX, NewMessage
from courriel.store.sqlite.store import SQLiteStore
from tests.harness import CourrielServer, free_port


def _peers() -> Path:
    """The Dovecot template: $COURRIEL_PEERS, else the project's copy in tests/peers."""
    if "COURRIEL_PEERS" in os.environ:
        return Path(os.environ["COURRIEL_PEERS"])
    return Path(__file__).resolve().parents[1] / "tests" / "peers"


PEER_CONF = _peers() / "dovecot.conf"
USER = "u@bench.test"
LOGIN_USERS = [f"login{i}@bench.test" for i in range(10)]
PASSWORD = "bench-pw"
VMAIL_UID = 5000
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "mail", "server", "message", "store", "retrieve"]


def messages(n: int, seed: int = 4) -> list[bytes]:
    """n messages of 2-16 KB (mean ~8.9 KB), CRLF, with dot-leading lines to stuff."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        head = (
            f"From: Sender {i} <s{i}@example.test>\r\nTo: {USER}\r\nSubject: bench message {i}\r\n"
            f"Date: Sun, 29 Nov 2026 00:00:00 +0000\r\nMessage-ID: <{i}.{seed}@bench.test>\r\n\r\n"
        ).encode()
        target = rng.randint(2048, 15800)
        lines = [head]
        size = len(head)
        while size < target:
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
            line = ("." + words if rng.random() < 0.05 else words).encode() + b"\r\n"
            lines.append(line)
            size += len(line)
        out.append(b"".join(lines))
    return out


def retr_all(port: int, count: int, cpu: Callable[[], float] = lambda: 0.0) -> tuple[float, float]:
    """Seconds for RETR 1..count in one logged-in session (login not timed), and the server
    CPU seconds ``cpu()`` counted meanwhile."""
    client = poplib.POP3("127.0.0.1", port)
    client.user(USER)
    client.pass_(PASSWORD)
    cpu_start = cpu()
    start = time.perf_counter()
    for i in range(1, count + 1):
        client.retr(i)
    elapsed = time.perf_counter() - start
    used = cpu() - cpu_start
    client.quit()
    return elapsed, used


def login_rate(port: int, n: int, threads: int) -> float:
    """Logins per second; each thread logs in as its own user (a POP3 maildrop is exclusive)."""
    local = threading.local()
    ids = itertools.count()

    def one(_: int) -> None:
        if not hasattr(local, "user"):
            local.user = LOGIN_USERS[next(ids)]
        client = poplib.POP3("127.0.0.1", port)
        client.user(local.user)
        client.pass_(PASSWORD)
        client.quit()

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return n / (time.perf_counter() - start)


class Dovecot:
    """A private Dovecot (POP3 only) per shared/peers/dovecot.conf, on a free port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.conf = root / "dovecot.conf"

    def start(self, msgs: list[bytes]) -> None:
        text = PEER_CONF.read_text().replace("@DIR@", str(self.root))
        text = text.replace("protocols = imap pop3", "protocols = pop3")
        text = text.replace("port = 10110", f"port = {self.port}").replace("port = 10143", f"port = {free_port()}")
        # the high-performance process model the reference figures were taken with
        text = "\n".join(line[1:] if line.startswith("#service") or line.startswith("#  ") or line == "#}" else line
                         for line in text.splitlines()) + "\n"  # fmt: skip
        text = text.replace("service imap {\n  service_count = 100\n  process_min_avail = 4\n}\n", "")
        text = text.replace("service imap-login {\n  service_count = 0\n  process_min_avail = 2\n}\n", "")
        self.conf.write_text(text)
        (self.root / "users").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}\n" for u in [USER, *LOGIN_USERS]))
        maildir = self.root / "mail" / USER / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        now = int(time.time())
        for i, data in enumerate(msgs):
            # Maildir keeps LF; S= and W= let Dovecot skip computing sizes
            lf = data.replace(b"\r\n", b"\n")
            (maildir / "cur" / f"{now + i}.M{i}P1.bench,S={len(lf)},W={len(data)}:2,").write_bytes(lf)
        for path in [self.root / "mail", *(self.root / "mail").rglob("*")]:
            os.chown(path, VMAIL_UID, VMAIL_UID)
        # the daemon keeps its standard streams: a pipe here would never reach EOF
        subprocess.run([dovecot_binary(), "-c", str(self.conf)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                poplib.POP3("127.0.0.1", self.port, timeout=2).quit()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not start: " + (self.root / "dovecot.log").read_text(errors="replace"))

    def pids(self) -> list[int]:
        """The master and its children (login, pop3, auth... processes)."""
        master = int((self.root / "run" / "master.pid").read_text().split()[0])
        out = [master]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rpartition(")")[2].split()[1]) == master:
                    out.append(int(stat.parent.name))
            except (OSError, ValueError):
                continue
        return out

    def stop(self) -> None:
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dovecot_binary() -> str:
    return shutil.which("dovecot") or "/usr/sbin/dovecot"


async def _fill(data_dir: Path, msgs: list[bytes]) -> None:
    store = await SQLiteStore.open(data_dir / "courriel.db", data_dir / "blobs")
    try:
        user = await store.get_user(USER)
        assert user is not None
        inbox = await store.get_mailbox(user.id, INBOX)
        assert inbox is not None
        for i in range(0, len(msgs), 200):
            await store.append_many(inbox.id, [NewMessage(m) for m in msgs[i : i + 200]])
    finally:
        await store.close()


def process_cpu(pids: Callable[[], list[int]]) -> float:
    """CPU seconds (user + system) used so far by the processes ``pids()`` names."""
    total = 0.0
    for pid in pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _measure(servers: dict[str, tuple[int, Callable[[], list[int]]]], count: int, logins: int,
             rounds: int) -> dict[str, dict[str, float]]:  # fmt: skip
    """Interleaved rounds (the machine is shared: load drifts), medians per server."""
    runs: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
    for port, _ in servers.values():
        retr_all(port, count)  # warm-up: page cache, connections, code paths
    for _ in range(rounds):
        for name, (port, pids) in servers.items():
            elapsed, cpu = retr_all(port, count, lambda pids=pids: process_cpu(pids))  # type: ignore[misc]
            r = runs[name]
            r.setdefault("retr_s", []).append(elapsed)
            r.setdefault("retr_cpu_us", []).append(cpu / count * 1e6)
            r.setdefault("login1", []).append(login_rate(port, logins, 1))
            r.setdefault("login10", []).append(login_rate(port, logins, 10))
    return {name: {k: _median(v) for k, v in r.items()} for name, r in runs.items()}


def run(quick: bool = False) -> dict[str, dict[str, float]]:
    count = 200 if quick else 1000
    logins = 10 if quick else 100
    rounds = 1 if quick else 3
    msgs = messages(count)
    megabytes = sum(len(m) for m in msgs) / 1e6
    users = dict.fromkeys([USER, *LOGIN_USERS], PASSWORD)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        (Path(tmp) / "courriel").mkdir()
        srv = CourrielServer(Path(tmp) / "courriel", users=users, domain="bench.test", only=("pop3",),
                             plaintext_auth=True)  # fmt: skip
        dovecot: Dovecot | None = None
        with srv:
            asyncio.run(_fill(srv.data, msgs))
            proc = srv.proc
            assert proc is not None
            servers: dict[str, tuple[int, Callable[[], list[int]]]] = {
                "courriel": (srv.port("pop3"), lambda: [proc.pid])
            }
            try:
                if PEER_CONF.exists() and shutil.which("doveadm") and os.geteuid() == 0:
                    peer_root = Path(tmp) / "dovecot"
                    peer_root.mkdir()
                    peer_root.chmod(0o755)
                    Path(tmp).chmod(0o755)
                    dovecot = Dovecot(peer_root)
                    dovecot.start(msgs)
                    servers["dovecot"] = (dovecot.port, dovecot.pids)
                else:
                    print("pop3: Dovecot not available (scripts/test-deps installs dovecot-pop3d; needs root)")
                results = _measure(servers, count, logins, rounds)
            finally:
                if dovecot is not None:
                    dovecot.stop()
    _report(results, count, megabytes)
    return results


def _report(results: dict[str, dict[str, float]], count: int, megabytes: float) -> None:
    print(f"pop3: poplib, {count} messages ({megabytes:.1f} MB); logins = connect+USER+PASS+QUIT")
    print(f"{'':>8} {'RETR s':>8} {'msg/s':>8} {'MB/s':>7} {'CPU us/RETR':>12} {'login/s c1':>11} {'login/s c10':>12}")
    for name, r in results.items():
        print(f"{name:>8} {r['retr_s']:>8.3f} {count / r['retr_s']:>8.0f} {megabytes / r['retr_s']:>7.1f}"
              f" {r['retr_cpu_us']:>12.0f} {r['login1']:>11.0f} {r['login10']:>12.0f}")  # fmt: skip
    if "dovecot" in results:
        ours, ref = results["courriel"], results["dovecot"]
        ratio: Callable[[str], float] = lambda k: ours[k] / ref[k]  # noqa: E731
        print(f"{'ratio':>8} {ref['retr_s'] / ours['retr_s']:>8.2f} {'':>8} {'':>7}"
              f" {ref['retr_cpu_us'] / max(ours['retr_cpu_us'], 1e-9):>12.2f} {ratio('login1'):>11.2f} {ratio('login10'):>12.2f}   (courriel / Dovecot; >1: courriel faster)")  # fmt: skip


if __name__ == "__main__":
    run()
