"""PostgreSQL schema migrations: numbered SQL files in ``migrations/``, recorded in the
``schema_version`` table, each applied in its own transaction under an advisory lock (so
that nodes starting together apply each migration once)."""

from __future__ import annotations

from importlib import resources

import psycopg

#: pg_advisory_xact_lock key serialising migrations ("courriel" in ASCII, truncated).
LOCK_KEY = 0x636F757272696531


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) for every migration shipped with the package, ascending."""
    out = []
    for entry in resources.files("courriel.store.postgres").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(out)


def newest() -> int:
    known = migrations()
    return known[-1][0] if known else 0


def _ensure_table(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version integer PRIMARY KEY, applied bigint NOT NULL DEFAULT extract(epoch FROM now())::bigint)"
    )


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute(
        "SELECT to_regclass('schema_version') IS NOT NULL"
    ).fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    """Bring the database to the newest schema; returns the versions applied."""
    applied: list[int] = []
    known = migrations()
    top = known[-1][0] if known else 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        _ensure_table(conn)
    current = schema_version(conn)
    if current > top:
        raise RuntimeError(f"database schema {current} is newer than this courriel ({top})")
    for version, sql in known:
        if version <= current:
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            if schema_version(conn) >= version:  # another node got there first
                continue
            conn.execute(sql.encode())  # no parameters: several statements in one call
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        applied.append(version)
    return applied


def migrate_dsn(dsn: str) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return migrate(conn)


def version_dsn(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return schema_version(conn)
