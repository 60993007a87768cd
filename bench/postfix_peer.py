"""A private Postfix on loopback (from /work/shared/peers templates, kept here as code).

Used by ``bench/smtp.py`` (the reference MTA delivering to Maildirs) and by
``tests/smtp/test_postfix_relay.py`` (Postfix relaying into courriel's MX). Postfix runs
from a private directory with its own queue, bound to 127.0.0.1 only, no chroot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
VMAIL_UID = 5000

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/spool
data_directory = {dir}/data
myhostname = mta.bench.local
mydomain = bench.local
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
biff = no
append_dot_mydomain = no
smtpd_banner = $myhostname ESMTP bench
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
alias_maps =
alias_database =
virtual_mailbox_domains = bench.test
virtual_mailbox_base = {dir}/vmail
virtual_mailbox_maps = texthash:{dir}/etc/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{uid}
virtual_minimum_uid = 100
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
"""

MASTER_CF = """\
127.0.0.1:{port} inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""

VMAILBOX = "u@bench.test  u/\n@bench.test  catchall/\n"


def available() -> bool:
    return os.access(POSTFIX, os.X_OK) and os.geteuid() == 0


class PostfixPeer:
    def __init__(self, port: int, extra_main: str = "") -> None:
        # Postfix's own user must reach this folder: not under pytest's 0700 temporary tree.
        self.root = Path(tempfile.mkdtemp(prefix="courriel-postfix-"))
        self.port = port
        self.etc = self.root / "etc"
        self.extra_main = extra_main

    def start(self) -> PostfixPeer:
        for d in ("etc", "spool", "data", "vmail"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root / "data", "postfix", "postfix")
        os.chown(self.root / "vmail", VMAIL_UID, VMAIL_UID)
        os.chmod(self.root, 0o755)
        (self.etc / "main.cf").write_text(MAIN_CF.format(dir=self.root, uid=VMAIL_UID) + self.extra_main)
        (self.etc / "master.cf").write_text(MASTER_CF.format(port=self.port))
        (self.etc / "vmailbox").write_text(VMAILBOX)
        self._postfix("check")
        self._postfix("start")
        deadline = time.monotonic() + 30
        import socket

        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(100).startswith(b"220"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not start: {self.log()}")
            time.sleep(0.1)

    def _postfix(self, *args: str) -> None:
        proc = subprocess.run([POSTFIX, "-c", str(self.etc), *args], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"postfix {' '.join(args)}: {proc.stdout}{proc.stderr}{self.log()}")

    def stop(self) -> None:
        subprocess.run([POSTFIX, "-c", str(self.etc), "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def maildir_count(self, box: str = "u") -> int:
        new = self.root / "vmail" / box / "new"
        return len(os.listdir(new)) if new.is_dir() else 0
