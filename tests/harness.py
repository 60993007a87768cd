"""A real courriel server for protocol tests: `courriel init`, users, free loopback ports,
`courriel serve` as a child process, stopped with SIGTERM.

    with CourrielServer(tmp_path, users={"alice@example.test": "pw"}) as srv:
        srv.port("imap")  # the port it listens on
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from types import TracebackType

from courriel.config import build_config
from courriel.store.api import Store

#: Every listener section of the configuration (new protocols are picked up automatically).
LISTENERS = tuple(build_config({}, env={}).listeners())


def _port_block() -> range:
    """Ports for this test process: below the kernel's ephemeral range (so no outgoing
    connection can take one between our pick and the server's bind), a separate block per
    pytest-xdist worker (so two workers never pick the same one)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            ephemeral_low = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        # Not under xdist: the ports above the workers' blocks, shared by any test processes
        # started by hand at the same time (each starts at its own random place in it).
        return range(26000, max(ephemeral_low, 26500))
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    width = 2000
    start = 10000 + (index % 8) * width
    return range(start, min(start + width, ephemeral_low))


_BLOCK = _port_block()
_next = 0 if os.environ.get("PYTEST_XDIST_WORKER") else random.randrange(len(_BLOCK))


def free_port() -> int:
    """A loopback port nobody listens on, from this process's own block (see _port_block)."""
    global _next
    for _ in range(len(_BLOCK)):
        port = _BLOCK[_next % len(_BLOCK)]
        _next += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this test process's block")


def courriel_cmd(*args: str, data: Path | None = None, stdin: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    base = [sys.executable, "-m", "courriel"] + (["-d", str(data)] if data else [])
    if args and args[0] == "init" and env and env.get("COURRIEL_STORE_DSN") and "--store" not in args:
        args = (*args, "--store", env["COURRIEL_STORE_DSN"])  # a PostgreSQL test server (see CourrielServer)
    proc = subprocess.run([*base, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"courriel {' '.join(args)}: {proc.stderr}")
    return proc


async def open_data_store(data: Path) -> Store:
    """The store of a test server's data directory, as its courriel.toml names it (SQLite in
    the directory, or the PostgreSQL database given to ``init --store``)."""
    from courriel.config import load_config
    from courriel.store import open_store

    return await open_store(load_config(data, env={}))


class CourrielServer:
    def __init__(
        self,
        root: Path,
        users: dict[str, str] | None = None,
        domain: str = "example.test",
        only: tuple[str, ...] | None = None,
        env: dict[str, str] | None = None,
        plaintext_auth: bool = False,
    ) -> None:
        self.root = root
        self.data = root / "data"
        self.domain = domain
        self.users = users if users is not None else {f"alice@{domain}": "alice-pw", f"bob@{domain}": "bob-pw"}
        self.only = only
        self.ports = {name: free_port() for name in LISTENERS}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COURRIEL_")}
        for name, port in self.ports.items():
            self.env[f"COURRIEL_{name.upper()}_LISTEN"] = f"127.0.0.1:{port}"
        if plaintext_auth:
            for name in ("imap", "pop3", "submission"):
                self.env[f"COURRIEL_{name.upper()}_ALLOW_PLAINTEXT_AUTH"] = "true"
        # Protocol tests queue mail for remote domains and look at it: no delivery attempts
        # unless a test asks (tests/outbound). Same for the MX's SPF/DKIM/DMARC checks (they add
        # Authentication-Results, refuse unauthenticated mail From a local domain).
        self.env["COURRIEL_OUTBOUND_ENABLED"] = "false"
        self.env["COURRIEL_MAILAUTH_ENABLED"] = "false"
        self.env.update(env or {})
        # The store backend: COURRIEL_TEST_BACKEND=postgres runs the server on a fresh database
        # of the test process's private PostgreSQL cluster (tests/pg.py), released at exit.
        self.backend = os.environ.get("COURRIEL_TEST_BACKEND", "sqlite")
        self.pg_dsn: str | None = None
        if env and "COURRIEL_STORE_DSN" in env:  # the test chose its store (tests/nodes)
            self.backend = env.get("COURRIEL_STORE_BACKEND", "sqlite")
        elif self.backend == "postgres":
            from tests.pg import cluster

            self.pg_dsn = cluster().fresh_dsn()
            self.env["COURRIEL_STORE_BACKEND"] = "postgres"
            self.env["COURRIEL_STORE_DSN"] = self.pg_dsn
            # Released when this object goes (a test may stop, leave and start it again).
            weakref.finalize(self, cluster().drop, self.pg_dsn)
        self.proc: subprocess.Popen[str] | None = None
        #: extra `courriel serve` arguments, e.g. ["--log-format", "json"]
        self.serve_args: list[str] = []
        self.output: list[str] = []
        self.stderr: list[str] = []

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return courriel_cmd(*args, data=self.data, stdin=stdin, env=self.env)

    def port(self, name: str) -> int:
        return self.ports[name]

    @property
    def cert(self) -> Path:
        return self.data / "tls" / "cert.pem"

    def start(self) -> CourrielServer:
        if not (self.data / "courriel.toml").exists():
            courriel_cmd("init", str(self.data), "--domain", self.domain, "--hostname", "mail." + self.domain, env=self.env)
            for address, password in self.users.items():
                self.cli("user", "add", address, "--password-stdin", stdin=password + "\n")
        args = [sys.executable, "-m", "courriel", "-d", str(self.data), "serve"]
        if self.only:
            args += ["--only", ",".join(self.only)]
        args += self.serve_args
        for attempt in range(3):
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
            assert self.proc.stdout is not None and self.proc.stderr is not None
            drain = threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr), daemon=True)
            drain.start()
            for line in self.proc.stdout:
                self.output.append(line.rstrip("\n"))
                if line.strip() == "courriel: ready":
                    threading.Thread(target=self._drain, args=(self.proc.stdout, self.output), daemon=True).start()
                    return self
            self.proc.wait()
            drain.join(5)
            self.proc.stdout.close()
            self.proc.stderr.close()
            self.proc = None
            if attempt < 2 and any("address already in use" in line.lower() for line in self.stderr):
                self._new_ports()  # someone else took a port in between: pick others
                continue
            break
        raise RuntimeError("courriel serve exited before ready:\n" + "\n".join(self.stderr))

    def _new_ports(self) -> None:
        self.stderr.clear()
        self.ports = {name: free_port() for name in LISTENERS}
        for name, port in self.ports.items():
            self.env[f"COURRIEL_{name.upper()}_LISTEN"] = f"127.0.0.1:{port}"

    @staticmethod
    def _drain(stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line.rstrip("\n"))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> CourrielServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
