"""Scale-out: SMTP ingest and the IMAP load mix on 1 node over SQLite, 1 node over
PostgreSQL and 2 nodes over one PostgreSQL database (clients split across the nodes).

- SMTP: ``smtp-source`` (bench/smtp.py's generator), 5 KB messages, one per connection; with
  two nodes, two smtp-source processes run at once, each sending half the messages with
  half the sessions to its node. msg/s until the last 250 (= durably stored).
  Also the CPU per message of the nodes plus the PostgreSQL server processes (less
  sensitive than msg/s to what else runs on a shared machine).
- IMAP: bench/imap_load.py's mix (LOGIN SELECT FETCH STORE SEARCH APPEND EXPUNGE LOGOUT) on
  a 200-message INBOX, N clients for a fixed time; with two nodes, N/2 clients on each.
  sessions/s.

PostgreSQL is a private cluster (tests/pg.py: initdb/pg_ctl in a temporary directory, fsync
on) on this same machine, so two nodes share its 2 cores with the database: the figures
show the cost of the shared store, not a scale-out on separate hosts. Ratios are to
1 node over SQLite, same run. ``--quick`` runs a short version; a full run writes its
table to docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.imap_load import _load
from bench.pop3 import PASSWORD, USER, messages, process_cpu
from bench.smtp import SIZE, SMTP_SOURCE, smtp_source
from tests.harness import CourrielServer

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
MARK_BEGIN = "<!-- bench/nodes.py begin -->"
MARK_END = "<!-- bench/nodes.py end -->"
FILL = 200  # messages in the INBOX for the IMAP mix (its EXPUNGE keeps UIDs 1..FILL)
SETUPS = ("sqlite-1", "postgres-1", "postgres-2")
ENV = {
    "COURRIEL_SERVER_LOG_LEVEL": "warning",
    "COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP": "1000",
    "COURRIEL_IMAP_MAX_CONNECTIONS_PER_USER": "1000",
}
SERVICES = ("smtp", "imap")

Result = dict[str, dict[str, float]]  # setup -> {"smtp": msg/s, "cpu": ms/msg, "imap": sessions/s}


def _pids(nodes: list[CourrielServer], pg_data: Path | None) -> list[int]:
    """The nodes' processes, and the PostgreSQL postmaster of ``pg_data`` with its children."""
    pids = [node.proc.pid for node in nodes if node.proc is not None]
    if pg_data is not None:
        postmaster = int((pg_data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        pids += [postmaster, *map(int, children)]
    return pids


async def _fill(node: CourrielServer, msgs: list[bytes]) -> None:
    """Put the IMAP mix's messages into the INBOX through the store API (either backend)."""
    from courriel.config import load_config
    from courriel.store import open_store
    from courriel.store.api import INBOX, NewMessage

    store = await open_store(load_config(node.data, env=node.env))
    try:
        user = await store.get_user(USER)
        assert user is not None
        inbox = await store.get_mailbox(user.id, INBOX)
        assert inbox is not None
        for i in range(0, len(msgs), 100):
            await store.append_many(inbox.id, [NewMessage(m) for m in msgs[i : i + 100]])
    finally:
        await store.close()


@contextmanager
def _setup(kind: str, root: Path, dsn: Callable[[], str]) -> Iterator[list[CourrielServer]]:
    if kind == "sqlite-1":
        srv = CourrielServer(root, users={USER: PASSWORD}, domain="bench.test", only=SERVICES,
                             plaintext_auth=True, env=ENV)  # fmt: skip
        nodes = [srv.start()]
    else:
        from tests.nodes.cluster import make_nodes

        nodes = make_nodes(root, dsn(), int(kind[-1]), env=ENV, users={USER: PASSWORD}, domain="bench.test",
                           services=SERVICES)  # fmt: skip
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _smtp(nodes: list[CourrielServer], n: int, conc: int, pg_data: Path | None) -> tuple[float, float]:
    """(msg/s, CPU ms per message) for ``n`` messages from ``conc`` sessions split across the nodes."""
    share = n // len(nodes)
    cpu0 = process_cpu(lambda: _pids(nodes, pg_data))
    errors: list[BaseException] = []
    elapsed: list[float] = []

    def one(node: CourrielServer) -> None:
        try:
            elapsed.append(smtp_source(node.port("smtp"), share, max(1, conc // len(nodes)), USER))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(node,)) for node in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    cpu = (process_cpu(lambda: _pids(nodes, pg_data)) - cpu0) / (share * len(nodes)) * 1000
    return share * len(nodes) / max(elapsed), cpu


async def _imap(nodes: list[CourrielServer], clients: int, seconds: float) -> float:
    rates = await asyncio.gather(
        *(_load(node.port("imap"), max(1, clients // len(nodes)), seconds, FILL) for node in nodes)
    )
    return sum(rates)


def run(quick: bool = False) -> Result:
    if not os.access(SMTP_SOURCE, os.X_OK):
        raise RuntimeError("bench/nodes.py needs smtp-source (Debian's postfix; scripts/test-deps)")
    n, conc = (60, 4) if quick else (1000, 20)
    clients, seconds = (4, 2.0) if quick else (20, 10.0)
    rounds = 1 if quick else 3
    msgs = messages(FILL)
    samples: dict[str, dict[str, list[float]]] = {k: {"smtp": [], "cpu": [], "imap": []} for k in SETUPS}
    loads: list[float] = [os.getloadavg()[0]]  # the machine is shared: its 1-minute load, sampled
    cluster = None

    def dsn() -> str:
        nonlocal cluster
        from tests.pg import Cluster

        if cluster is None:
            cluster = Cluster()
            cluster.start()
        return cluster.fresh_dsn("bench")

    try:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
            for r in range(rounds):  # interleaved rounds, medians: the machine is shared
                for kind in SETUPS:
                    root = Path(tmp) / f"{kind}-{r}"
                    with _setup(kind, root, dsn) as nodes:
                        asyncio.run(_fill(nodes[0], msgs))
                        samples[kind]["imap"].append(asyncio.run(_imap(nodes, clients, seconds)))
                        pg_data = cluster.data if cluster is not None and kind != "sqlite-1" else None
                        rate, cpu = _smtp(nodes, n, conc, pg_data)
                        samples[kind]["smtp"].append(rate)
                        samples[kind]["cpu"].append(cpu)
                    loads.append(os.getloadavg()[0])
    finally:
        if cluster is not None:
            cluster.stop()
    result: Result = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in samples.items()}
    base = result["sqlite-1"]
    print(f"nodes: SMTP {n} x {SIZE // 1024} KB from {conc} sessions; IMAP mix, {clients} clients, {seconds:.0f} s")
    print(f"{'setup':>12} {'SMTP msg/s':>11} {'ratio':>6} {'CPU ms/msg':>11} {'IMAP sess/s':>12} {'ratio':>6}")
    for kind in SETUPS:
        row = result[kind]
        print(f"{kind:>12} {row['smtp']:>11.0f} {row['smtp'] / base['smtp']:>6.2f} {row['cpu']:>11.2f}"
              f" {row['imap']:>12.1f} {row['imap'] / base['imap']:>6.2f}")  # fmt: skip
    print(f"load average (1 min) during the run: {min(loads):.1f} to {max(loads):.1f}")
    if not quick:
        write_doc(result, n, conc, clients, seconds, rounds, (min(loads), max(loads)))
    return result


def write_doc(
    result: Result, n: int, conc: int, clients: int, seconds: float, rounds: int, loads: tuple[float, float]
) -> None:
    base = result["sqlite-1"]
    names = {"sqlite-1": "1 node, SQLite", "postgres-1": "1 node, PostgreSQL", "postgres-2": "2 nodes, one PostgreSQL"}
    lines = [
        MARK_BEGIN,
        "## Scale-out: nodes on PostgreSQL (`bench/nodes.py`)",
        "",
        f"SMTP: smtp-source, {n} messages of {SIZE // 1024} KB, one per connection, {conc} sessions in all",
        f"(split across the nodes). IMAP: the bench/imap_load.py mix, {clients} clients in all, {seconds:.0f} s.",
        f"Medians of {rounds} interleaved rounds. PostgreSQL is a private cluster on the same machine",
        f"({os.cpu_count()} CPUs, 1-minute load average {loads[0]:.1f} to {loads[1]:.1f} during the run, sampled",
        "after each setup; other work shares the machine), fsync on; both",
        "nodes and the database share those CPUs, so this measures the shared store's cost, not",
        "the gain of separate hosts. Ratios: to 1 node over SQLite. CPU: the nodes' and the",
        "PostgreSQL server's processes, per message.",
        "",
        "| setup | SMTP msg/s | ratio | SMTP CPU ms/msg | IMAP sessions/s | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in SETUPS:
        row = result[kind]
        lines.append(
            f"| {names[kind]} | {row['smtp']:.0f} | {row['smtp'] / base['smtp']:.2f} | {row['cpu']:.2f} "
            f"| {row['imap']:.1f} | {row['imap'] / base['imap']:.2f} |"
        )
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
