"""Started as root with [server] user: ports below 1024 bound first, then the drop to the
user (the data directory handed over), then mail flows through the low port and IMAP."""

from __future__ import annotations

import imaplib
import os
import pwd
import smtplib
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from courriel.config import build_config
from courriel.privileges import PrivilegeError, chown_tree, prebind, release, resolve, take
from tests.harness import CourrielServer
from tests.tools import unavailable

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs the tests as root)")


def low_port(after: int = 600) -> int:
    for port in range(after, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 600-1000")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="courriel-priv-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def reachable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents] if p.exists())


@pytest.fixture
def python_for_nobody(shared_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An interpreter the dropped process can still read (it imports lazily): this one, or,
    when it lives in root's home (pyenv), the system's python3 with this venv's packages."""
    if reachable_by_others(Path(sys.base_prefix)):
        return {}
    system = Path("/usr/bin/python3")
    if not system.exists():
        unavailable("the interpreter is unreadable to nobody and there is no /usr/bin/python3")
    site_dir = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    boot = shared_dir / "boot"
    boot.mkdir()
    (boot / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({site_dir!r})\n")
    boot.chmod(0o755)
    (boot / "sitecustomize.py").chmod(0o644)
    monkeypatch.setattr(sys, "executable", str(system))
    return {"PYTHONPATH": str(boot)}


def proc_ids(pid: int) -> tuple[int, int, list[int]]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {line.split(":")[0]: line.split(":")[1].split() for line in status.splitlines() if ":" in line}
    return int(fields["Uid"][1]), int(fields["Gid"][1]), [int(g) for g in fields["Groups"]]


@root_only
def test_drop_to_nobody_after_binding_low_port(shared_dir: Path, python_for_nobody: dict[str, str]) -> None:
    nobody = pwd.getpwnam("nobody")
    port = low_port()
    http_port = low_port(port + 1)
    srv = CourrielServer(shared_dir, only=("smtp", "imap", "http"), plaintext_auth=True,
                         env={"COURRIEL_SERVER_USER": "nobody", **python_for_nobody})  # fmt: skip
    srv.ports["smtp"] = port
    srv.env["COURRIEL_SMTP_LISTEN"] = f"127.0.0.1:{port}"
    srv.ports["http"] = http_port  # the ACME HTTP-01 listener is on port 80 in production
    srv.env["COURRIEL_HTTP_LISTEN"] = f"127.0.0.1:{http_port}"
    with srv:
        assert srv.proc is not None
        uid, gid, groups = proc_ids(srv.proc.pid)
        assert (uid, gid, groups) == (nobody.pw_uid, nobody.pw_gid, [])
        assert srv.data.stat().st_uid == nobody.pw_uid
        assert (srv.data / "courriel.db").stat().st_uid == nobody.pw_uid
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail("someone@remote.test", ["alice@example.test"],
                          b"Subject: low port\r\nFrom: someone@remote.test\r\n\r\nhello from port below 1024\r\n")  # fmt: skip
        imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
        imap.login("alice@example.test", "alice-pw")
        imap.select("INBOX")
        typ, data = imap.search(None, "SUBJECT", '"low port"')
        assert typ == "OK" and data[0].split()
        imap.logout()
        reply = httpx.get(f"http://127.0.0.1:{http_port}/.well-known/acme-challenge/none")
        assert reply.status_code == 404 and reply.text == "no such challenge\n"
    log = "\n".join(srv.stderr)
    assert "given to nobody" in log and "running as nobody" in log


@root_only
def test_unknown_user_refuses_to_start(tmp_path: Path) -> None:
    srv = CourrielServer(tmp_path, users={}, only=("imap",), env={"COURRIEL_SERVER_USER": "no-such-user-courriel"})
    with pytest.raises(RuntimeError, match="no user 'no-such-user-courriel'"):
        srv.start()


def test_resolve_errors() -> None:
    with pytest.raises(PrivilegeError, match="no user"):
        resolve("no-such-user-courriel")
    with pytest.raises(PrivilegeError, match="no group"):
        resolve("root", "no-such-group-courriel")
    assert resolve("root") == (0, 0)


def test_prebind_only_low_ports_and_take_once() -> None:
    port = low_port() if os.geteuid() == 0 else 0
    high = socket.socket()
    high.bind(("127.0.0.1", 0))
    high_port = high.getsockname()[1]
    high.close()
    env = {"COURRIEL_IMAP_LISTEN": f"127.0.0.1:{high_port}", "COURRIEL_SMTP_LISTEN": f"127.0.0.1:{port or 1}"}
    cfg = build_config({}, env=env)
    if os.geteuid() != 0:
        unavailable("binding below 1024 needs root")
    try:
        assert prebind(cfg) == [("127.0.0.1", port)]
        socks = take("127.0.0.1", port)
        assert socks and socks[0].getsockname() == ("127.0.0.1", port)
        assert take("127.0.0.1", port) is None
        assert take("127.0.0.1", high_port) is None
        for s in socks:
            s.close()
    finally:
        release()


@root_only
def test_chown_tree(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    nobody = pwd.getpwnam("nobody")
    assert chown_tree(tmp_path / "a", nobody.pw_uid, nobody.pw_gid) == 3
    assert (tmp_path / "a" / "b" / "f").stat().st_uid == nobody.pw_uid
    assert chown_tree(tmp_path / "a", nobody.pw_uid, nobody.pw_gid) == 0


def test_serve_help_mentions_sighup() -> None:
    out = subprocess.run([sys.executable, "-m", "courriel", "serve", "--help"], capture_output=True, text=True)
    assert "SIGHUP reloads the TLS certificate" in " ".join(out.stdout.split())
