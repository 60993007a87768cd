"""The IMAP server the interop suite talks to: courriel, or (to check the suite itself) Dovecot.

The suite is written against RFC 9051/3501 behaviour, so it must also pass against a server
we did not write. ``IMAP_INTEROP_PEER=dovecot`` runs it against a private Dovecot on
loopback (tests/peers/dovecot.conf with TLS and SCRAM added); the default, and what CI
runs, is a real ``courriel serve``. Features a peer does not have are listed in its
``missing`` set: tests needing one skip on that peer only; on courriel they always run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import CourrielServer, courriel_cmd, free_port

DOMAIN = "example.test"
USERS = {f"alice@{DOMAIN}": "alice-pw", f"bob@{DOMAIN}": "bob-pw", f"carol@{DOMAIN}": "carol-pw"}
PEER_ENV = "IMAP_INTEROP_PEER"


def _peers() -> Path:
    """The Postfix/Dovecot templates: $COURRIEL_PEERS, else the project's copies in tests/peers."""
    if "COURRIEL_PEERS" in os.environ:
        return Path(os.environ["COURRIEL_PEERS"])
    return Path(__file__).resolve().parents[1] / "peers"


DOVECOT_TEMPLATE = _peers() / "dovecot.conf"


@dataclass
class Target:
    """One running IMAP server: where it listens, who may log in, how to bulk-load mail."""

    name: str
    host: str
    imap_port: int
    imaps_port: int
    cert: Path
    users: dict[str, str]
    #: capabilities, or RFC behaviours, this server lacks: tests of them skip here (never on courriel)
    missing: frozenset[str] = frozenset()
    _server: CourrielServer | None = field(default=None, repr=False)
    _dovecot_conf: Path | None = field(default=None, repr=False)

    def load_mbox(self, user: str, path: Path, mailbox: str = "INBOX") -> None:
        """Bring every message of an mbox file into ``mailbox`` (created when missing)."""
        if self._server is not None:
            out = self._server.cli("import", user, str(path), "--mailbox", mailbox, "--quiet")
            assert "imported" in out.stdout, out.stdout
            return
        # Dovecot (checking the suite only): APPEND each message over IMAP.
        import imaplib

        conn = imaplib.IMAP4(self.host, self.imap_port)
        conn.login(user, self.users[user])
        conn.create(mailbox)
        for data in split_mbox(path.read_bytes()):
            typ, _ = conn.append(mailbox, None, None, data)
            assert typ == "OK"
        conn.logout()

    @property
    def log(self) -> str:
        if self._server is not None:
            return "\n".join(self._server.stderr[-50:])
        return ""


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox written by this suite (no quoted From lines), in CRLF form."""
    out = []
    for chunk in data.split(b"\n\nFrom "):
        body = chunk.partition(b"\n")[2]  # after the From_ line
        out.append(body.rstrip(b"\n").replace(b"\n", b"\r\n") + b"\r\n")
    return out


def start_target(root: Path, plaintext_auth: bool = True, peer: str | None = None) -> Generator[Target, None, None]:
    """Start the chosen server under ``root`` and yield it; stops it afterwards.

    ``plaintext_auth`` permits passwords before TLS on the STARTTLS port (for tools we
    drive without TLS); without it the server must advertise LOGINDISABLED there.
    ``peer`` ("courriel" or "dovecot") overrides $IMAP_INTEROP_PEER (bench/imap_sync.py).
    """
    if (peer or os.environ.get(PEER_ENV, "courriel")) == "dovecot":
        yield from _dovecot(plaintext_auth)
        return
    with CourrielServer(root, users=dict(USERS), domain=DOMAIN, only=("imap", "imaps"), plaintext_auth=plaintext_auth) as srv:
        yield Target("courriel", "127.0.0.1", srv.port("imap"), srv.port("imaps"), srv.cert, dict(USERS), _server=srv)


# --- Dovecot, to check the suite itself --------------------------------------------------

DOVECOT_EXTRA = """
ssl = yes
ssl_cert = <@DIR@/tls/cert.pem
ssl_key = <@DIR@/tls/key.pem
auth_mechanisms = plain login scram-sha-256
mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = @IMAP@
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = @IMAPS@
    ssl = yes
  }
}
"""


def _dovecot(plaintext_auth: bool) -> Iterator[Target]:
    if shutil.which("dovecot") is None:
        raise RuntimeError("IMAP_INTEROP_PEER=dovecot needs the dovecot-imapd package")
    # Dovecot's processes run as uid 5000 and must reach the mail folders: not under the
    # private pytest temporary directory.
    base = Path(tempfile.mkdtemp(prefix="interop-dovecot-"))
    base.chmod(0o755)
    try:
        courriel_cmd("init", str(base / "courriel"), "--domain", DOMAIN)  # only for its certificate
        (base / "tls").mkdir()
        for name in ("cert.pem", "key.pem"):
            shutil.copy(base / "courriel" / "tls" / name, base / "tls" / name)
        (base / "mail").mkdir()
        os.chown(base / "mail", 5000, 5000)
        (base / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in USERS.items()))
        imap, imaps = free_port(), free_port()
        conf = DOVECOT_TEMPLATE.read_text().replace("mail_location = maildir:~/Maildir\n", "")
        conf = conf[: conf.index("service imap-login {")]  # listeners are redefined below
        conf += DOVECOT_EXTRA.replace("@IMAPS@", str(imaps)).replace("@IMAP@", str(imap))
        conf = conf.replace("@DIR@", str(base)).replace("protocols = imap pop3", "protocols = imap")
        if not plaintext_auth:
            conf = conf.replace("disable_plaintext_auth = no", "disable_plaintext_auth = yes")
        (base / "dovecot.conf").write_text(conf)
        subprocess.run(["dovecot", "-c", str(base / "dovecot.conf")], check=True, timeout=60)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", imap)) == 0:
                    break
            time.sleep(0.1)
        try:
            yield Target(
                "dovecot", "127.0.0.1", imap, imaps, base / "tls" / "cert.pem", dict(USERS),
                missing=frozenset({"IMAP4rev2", "LOGINDISABLED", "RENAME-INBOX", "NONEXISTENT", "CREATE-INBOX-FAILS"}), _dovecot_conf=base / "dovecot.conf",
            )  # fmt: skip
        finally:
            subprocess.run(["doveadm", "-c", str(base / "dovecot.conf"), "stop"], timeout=60, check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)
