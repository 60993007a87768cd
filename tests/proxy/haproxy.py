"""A private HAProxy on loopback for tests: TCP frontends relaying to courriel listeners with
the PROXY protocol (``send-proxy`` = v1, ``send-proxy-v2``), from a chosen source address.

    with HAProxy(tmp_path, [Frontend("smtp", [("127.0.0.1", srv.port("smtp"))], "v1")]) as hap:
        smtplib.SMTP("127.0.0.1", hap.port("smtp"), source_address=("127.0.0.5", 0))
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.harness import free_port
from tests.tools import need


@dataclass
class Frontend:
    name: str
    servers: list[tuple[str, int]]
    #: "v1" (send-proxy), "v2" (send-proxy-v2) or "" (plain TCP relay, no header).
    proxy: str = "v2"
    #: Health checks (TCP connect; with a PROXY v2 LOCAL header when proxy is v2).
    check: bool = False
    #: With ``check``: what the server must send first (its greeting), e.g. "* OK".
    expect: str = ""
    port: int = field(default_factory=free_port)


class HAProxy:
    def __init__(self, root: Path, frontends: list[Frontend], source: str = "127.0.0.2") -> None:
        self.exe = need("haproxy")
        self.root = root
        self.frontends = {f.name: f for f in frontends}
        self.source = source
        self.ready_port = free_port()
        self.stats = root / "haproxy.sock"
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    def port(self, name: str) -> int:
        return self.frontends[name].port

    def config(self) -> str:
        lines = [
            "global",
            "    maxconn 1000",
            f"    stats socket {self.stats} mode 600 level admin",
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 120s",
            "    timeout server 120s",
            "    timeout check 2s",
            # a node that refuses or dies: try another one (clients reconnect anyway)
            "    retries 3",
            "    option redispatch",
            "frontend ready",  # polled to know haproxy is up; relays nothing
            f"    bind 127.0.0.1:{self.ready_port}",
            "    tcp-request connection reject",
        ]
        for f in self.frontends.values():
            lines += [f"frontend {f.name}", f"    bind 127.0.0.1:{f.port}", f"    default_backend {f.name}_nodes"]
            lines += [f"backend {f.name}_nodes", "    balance roundrobin"]
            if f.check and f.expect:
                expect = f.expect.replace(" ", "\\ ")  # haproxy's escaping of spaces
                lines += ["    option tcp-check", f"    tcp-check expect string {expect}"]
            for i, (host, port) in enumerate(f.servers):
                opts = {"v1": " send-proxy", "v2": " send-proxy-v2", "": ""}[f.proxy]
                if f.check:
                    opts += " check inter 500ms fall 1 rise 1" + (" check-send-proxy" if f.proxy else "")
                lines.append(f"    server node{i} {host}:{port}{opts} source {self.source}")
        return "\n".join(lines) + "\n"

    def start(self) -> HAProxy:
        cfg = self.root / "haproxy.cfg"
        cfg.write_text(self.config())
        check = subprocess.run([self.exe, "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen(
            [self.exe, "-db", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited:\n" + "\n".join(self.log))
            try:
                socket.create_connection(("127.0.0.1", self.ready_port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("haproxy did not start:\n" + "\n".join(self.log))

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip("\n"))

    def command(self, cmd: str) -> str:
        """A command on the stats socket (``show servers state``, ``disable server ...``)."""
        deadline = time.monotonic() + 15
        while True:  # haproxy may accept on its ports a moment before its stats socket exists
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(str(self.stats))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with s:
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._drainer.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def __enter__(self) -> HAProxy:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
