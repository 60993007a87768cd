"""A private PostgreSQL cluster for the tests: Debian's initdb and pg_ctl in a temporary
directory, listening on 127.0.0.1 and a free port, fsync on (durability is tested).

One cluster per test process, started on first use and stopped at exit. ``fresh_dsn()``
gives a new empty database created from a migrated template (CREATE DATABASE ... TEMPLATE
copies files: much faster than running the migrations again).

As root, initdb refuses to run: the cluster then runs as the ``postgres`` user that the
Debian package creates (through ``runuser``), in a directory that user owns.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from tests.harness import free_port
from tests.tools import unavailable

SUPERUSER = "courriel"
TEMPLATE = "courriel_template"


def bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class Cluster:
    def __init__(self) -> None:
        bins = bin_dir()
        if bins is None:
            raise FileNotFoundError("PostgreSQL server binaries not found (Debian package postgresql-15)")
        self.bins = bins
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="courriel-pg-"))
        self.data = self.root / "data"
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self._counter = itertools.count(1)
        self._free: list[str] = []
        self._lock = threading.Lock()
        self._started = False

    def _cmd(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self.run_as, *args], capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {proc.stdout}\n{proc.stderr}")
        return proc

    def start(self) -> None:
        self._cmd(
            str(self.bins / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=on",
                "-c synchronous_commit=on",
                "-c max_connections=300",
                "-c shared_buffers=32MB",
                "-c max_wal_size=256MB",
                "-c log_min_messages=warning",
            ]
        )
        self._options = options
        for attempt in range(5):
            try:
                self._pg_start()
                break
            except RuntimeError:
                log = (self.root / "log").read_text(errors="replace") if (self.root / "log").exists() else ""
                if attempt == 4 or "already in use" not in log:
                    shutil.rmtree(self.root, ignore_errors=True)
                    raise
                # another process took the port between our check and the bind: pick another
                (self.root / "log").unlink()
                old_port, self.port = self.port, free_port()
                self._options = self._options.replace(f"port={old_port}", f"port={self.port}")
        self._started = True
        atexit.register(self.stop)
        from courriel.store.postgres.schema import migrate_dsn

        self.admin(f"CREATE DATABASE {TEMPLATE}")
        migrate_dsn(self.dsn(TEMPLATE))

    def _pg_start(self) -> None:
        self._cmd(
            str(self.bins / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60",
            "-o", self._options, "start",
        )  # fmt: skip

    def crash_and_restart(self) -> None:
        """Stop the server as a crash would (immediate: no checkpoint, WAL recovery at the
        next start), then start it again."""
        self._cmd(str(self.bins / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        self._pg_start()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def fresh_dsn(self, prefix: str = "t") -> str:
        """A migrated, empty database: a released one, else a new one from the template."""
        with self._lock:
            if self._free:
                return self._free.pop()
            name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.dsn(name)

    def drop(self, dsn: str) -> None:
        """Give a database back: emptied (cheaper than DROP DATABASE, which forces a
        checkpoint) for the next fresh_dsn(); dropped if that fails."""
        import psycopg

        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid != pg_backend_pid()"
                )
                tables = [r[0] for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename != 'schema_version'"
                )]  # fmt: skip
                with conn.transaction():  # a few rows each: DELETE beats TRUNCATE's new files
                    conn.execute("SET LOCAL session_replication_role = replica")  # no FK order
                    for table in tables:
                        conn.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
        except Exception:
            try:
                self.admin(f"DROP DATABASE IF EXISTS {dsn.rsplit('/', 1)[1]} WITH (FORCE)")
            except Exception:  # the cluster is going away anyway
                pass
            return
        with self._lock:
            self._free.append(dsn)

    def stop(self) -> None:
        if self._started:
            self._started = False
            try:
                self._cmd(str(self.bins / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


_cluster: Cluster | None = None
_cluster_lock = threading.Lock()


def cluster() -> Cluster:
    """The process's cluster, started on first use (skips, or fails under CI, without PostgreSQL)."""
    global _cluster
    with _cluster_lock:
        if _cluster is None:
            try:
                c = Cluster()
            except FileNotFoundError as exc:
                unavailable(str(exc))
            c.start()
            _cluster = c
        return _cluster
