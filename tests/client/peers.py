"""Private Dovecot (IMAP, POP3, SASL for Postfix) and Postfix (submission on STARTTLS and
implicit TLS) on loopback, from the templates in tests/peers/, with a self-signed
certificate. Postfix delivers for @client.test into the Maildirs Dovecot serves.

Users come from a fixed pool so each test has mailboxes of its own (Postfix's virtual
delivery refuses regexp maps, so the pool is written out at start).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from courriel.tls import generate_self_signed
from tests.harness import free_port
from tests.tools import need

DOMAIN = "client.test"
POOL = 40
VMAIL_UID = 5000

DOVECOT_CONF = """
instance_name = @NAME@
base_dir = @DIR@/run
state_dir = @DIR@/state
log_path = @DIR@/dovecot.log
info_log_path = @DIR@/dovecot-info.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <@DIR@/tls/cert.pem
ssl_key = <@DIR@/tls/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
# no growing penalty for failed logins from loopback (the error tests fail some on purpose)
login_trusted_networks = 127.0.0.0/8
first_valid_uid = 5000
last_valid_uid = 5000
first_valid_gid = 5000
last_valid_gid = 5000
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
namespace inbox {
  inbox = yes
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
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u @DIR@/users
}
userdb {
  driver = static
  args = uid=5000 gid=5000 home=@DIR@/mail/%u
}
protocol imap {
  mail_max_userip_connections = 1000
}
protocol pop3 {
  mail_max_userip_connections = 1000
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
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = @POP3@
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = @POP3S@
    ssl = yes
  }
}
service auth {
  unix_listener @DIR@/auth-postfix {
    mode = 0666
  }
}
"""

POSTFIX_EXTRA = """
virtual_mailbox_domains = @DOMAIN@
virtual_mailbox_base = @DIR@/mail
virtual_mailbox_maps = texthash:@DIR@/pf/etc/vmailbox
mynetworks = 127.0.0.1/32
smtpd_tls_cert_file = @DIR@/tls/cert.pem
smtpd_tls_key_file = @DIR@/tls/key.pem
smtpd_sasl_type = dovecot
smtpd_sasl_path = @DIR@/auth-postfix
message_size_limit = 20000000
smtpd_error_sleep_time = 0
"""

SUBMISSION_OPTS = (
    "  -o smtpd_sasl_auth_enable=yes\n"
    "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
    "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
)


@dataclass
class Peers:
    root: Path
    imap: int = field(default_factory=free_port)
    imaps: int = field(default_factory=free_port)
    pop3: int = field(default_factory=free_port)
    pop3s: int = field(default_factory=free_port)
    submission: int = field(default_factory=free_port)
    submissions: int = field(default_factory=free_port)
    next_user: int = 0

    @property
    def cert(self) -> Path:
        return self.root / "tls" / "cert.pem"

    def user(self) -> tuple[str, str]:
        """A user of the pool no other test has used: (address, password)."""
        self.next_user += 1
        if self.next_user > POOL:
            raise RuntimeError("the Dovecot user pool is exhausted: raise POOL")
        n = self.next_user
        return f"user{n:02d}@{DOMAIN}", f"pw-user{n:02d}"

    def maildir(self, address: str) -> Path:
        return self.root / "mail" / address / "Maildir"

    def wait_delivered(self, address: str, count: int, timeout: float = 60) -> list[Path]:
        """The files in the user's INBOX once at least ``count`` have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            md = self.maildir(address)
            files = [p for sub in ("new", "cur") if (md / sub).is_dir() for p in (md / sub).iterdir()]
            if len(files) >= count:
                return files
            if time.monotonic() > deadline:
                log = (self.root / "pf" / "maillog").read_text(errors="replace")[-3000:] if (self.root / "pf" / "maillog").exists() else ""
                raise AssertionError(f"{count} messages not delivered to {address}; maillog:\n{log}")
            time.sleep(0.05)

    def start(self) -> None:
        dovecot = need("dovecot", "dovecot-imapd")
        need("doveadm", "dovecot-core")
        postfix = need("postfix")
        root = self.root
        for sub in ("tls", "run", "state", "mail", "pf/etc", "pf/spool", "pf/data"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        generate_self_signed(root / "tls" / "cert.pem", root / "tls" / "key.pem", "localhost")
        os.chmod(root / "tls" / "key.pem", 0o600)
        os.chown(root / "mail", VMAIL_UID, VMAIL_UID)
        users = [(f"user{n:02d}@{DOMAIN}", f"pw-user{n:02d}") for n in range(1, POOL + 1)]
        (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users))
        subs = {"@DIR@": str(root), "@NAME@": f"client-dovecot-{root.name}", "@IMAP@": str(self.imap),
                "@IMAPS@": str(self.imaps), "@POP3@": str(self.pop3), "@POP3S@": str(self.pop3s),
                "@DOMAIN@": DOMAIN}  # fmt: skip

        def fill(text: str) -> str:
            for k, v in subs.items():
                text = text.replace(k, v)
            return text

        (root / "dovecot.conf").write_text(fill(DOVECOT_CONF))
        run([dovecot, "-c", str(root / "dovecot.conf")])
        peers_dir = Path(__file__).resolve().parents[1] / "peers"  # the project's copies
        main_cf = (peers_dir / "postfix-main.cf").read_text()
        main_cf = main_cf.replace("@DIR@/spool", "@DIR@/pf/spool").replace("@DIR@/data", "@DIR@/pf/data")
        main_cf = main_cf.replace("@DIR@/maillog", "@DIR@/pf/maillog")
        main_cf = "\n".join(line for line in main_cf.splitlines()
                            if not line.startswith(("virtual_mailbox_domains", "virtual_mailbox_base",
                                                    "virtual_mailbox_maps", "mynetworks")))  # fmt: skip
        (root / "pf" / "etc" / "main.cf").write_text(fill(main_cf + POSTFIX_EXTRA))
        master = (peers_dir / "postfix-master.cf").read_text().splitlines()
        master = [line for line in master if "smtpd" not in line or line.startswith("#")]
        master.append("tlsmgr    unix  -       -       n       1000?   1       tlsmgr")  # TLS session cache, entropy
        master.append(f"127.0.0.1:{self.submission} inet n - n - - smtpd\n"
                      "  -o smtpd_tls_security_level=encrypt\n  -o smtpd_tls_auth_only=yes\n" + SUBMISSION_OPTS)  # fmt: skip
        master.append(f"127.0.0.1:{self.submissions} inet n - n - - smtpd\n"
                      "  -o smtpd_tls_wrappermode=yes\n" + SUBMISSION_OPTS)  # fmt: skip
        (root / "pf" / "etc" / "master.cf").write_text("\n".join(master) + "\n")
        (root / "pf" / "etc" / "vmailbox").write_text("".join(f"{u} {u}/Maildir/\n" for u, _ in users))
        shutil.chown(root / "pf" / "data", "postfix")
        etc = str(root / "pf" / "etc")
        run([postfix, "-c", etc, "check"])
        run([postfix, "-c", etc, "start"])
        wait_port(self.submission)
        wait_port(self.imap)

    def stop(self) -> None:
        etc = self.root / "pf" / "etc"
        if (etc / "main.cf").exists():
            subprocess.run([need("postfix"), "-c", str(etc), "stop"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)  # fmt: skip
        conf = self.root / "dovecot.conf"
        if conf.exists():
            subprocess.run([need("doveadm"), "-c", str(conf), "stop"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)  # fmt: skip


def run(cmd: list[str]) -> None:
    # Daemons keep inherited pipes open: send their output to a file, not a pipe.
    with tempfile.TemporaryFile() as out:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60)
        out.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {out.read().decode(errors='replace')}")


def wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_root() -> Path:
    """A private folder the unprivileged Dovecot and Postfix processes can traverse
    (pytest's own temporary folders are mode 0700)."""
    root = Path(tempfile.mkdtemp(prefix="courriel-client-peers-"))
    root.chmod(0o755)
    return root
