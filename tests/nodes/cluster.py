"""Several ``courriel serve`` nodes on one PostgreSQL database (tests/pg.py's private cluster).

Each node has its own data directory (configuration, TLS certificate) and its own free
ports; the store (users, mailboxes, messages as bytea) is the shared database.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from courriel.config import load_config
from courriel.store import open_store
from tests.harness import CourrielServer, courriel_cmd

USERS = {"alice@example.test": "alice-pw", "bob@example.test": "bob-pw"}
SERVICES = ("smtp", "submission", "imap", "pop3")


def pg_env(dsn: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"COURRIEL_STORE_BACKEND": "postgres", "COURRIEL_STORE_DSN": dsn, **(extra or {})}


def make_nodes(
    root: Path,
    dsn: str,
    count: int = 2,
    env: dict[str, str] | None = None,
    users: dict[str, str] | None = None,
    domain: str = "example.test",
    services: tuple[str, ...] = SERVICES,
) -> list[CourrielServer]:
    """``count`` started nodes on ``dsn``, which gets the domain and the users.

    The first node's data directory is made by ``courriel init``; the others are copies of
    it (the same configuration and TLS certificate, as in a real deployment)."""
    node_env = pg_env(dsn, env)
    nodes = [
        CourrielServer(root / f"node{i}", users={}, domain=domain, env=node_env, plaintext_auth=True, only=services)
        for i in range(count)
    ]
    first = nodes[0]
    courriel_cmd("init", str(first.data), "--domain", domain, "--hostname", f"mail.{domain}", env=first.env)
    for node in nodes[1:]:
        shutil.copytree(first.data, node.data, ignore=shutil.ignore_patterns("courriel.db*", "blobs"))
    asyncio.run(_populate(first, domain, USERS if users is None else users))
    started: list[CourrielServer] = []
    try:
        for node in nodes:
            started.append(node.start())
    except BaseException:
        for node in started:
            node.stop()
        raise
    return started


async def _populate(node: CourrielServer, domain: str, users: dict[str, str]) -> None:
    """The domain and the users, in the shared database (``courriel init`` made its own SQLite)."""
    store = await open_store(load_config(node.data, env=node.env))
    try:
        if not await store.is_local_domain(domain):
            await store.add_domain(domain)
        for address, password in users.items():
            await store.add_user(address, password)
    finally:
        await store.close()


def wait_refused(port: int) -> None:
    """After kill -9, the port refuses connections (the kernel closed the socket)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return
    raise AssertionError(f"port {port} still accepts connections")


@contextmanager
def running_nodes(root: Path, count: int = 2, env: dict[str, str] | None = None) -> Iterator[list[CourrielServer]]:
    """Nodes on a fresh database of the test process's PostgreSQL cluster; stopped and the
    database dropped at exit."""
    from tests.pg import cluster

    pg = cluster()
    dsn = pg.fresh_dsn("nodes")
    try:
        nodes = make_nodes(root, dsn, count, env)
        try:
            yield nodes
        finally:
            for node in nodes:
                node.stop()
    finally:
        pg.drop(dsn)
