"""Postfix, Exim and Sendmail run privately on loopback, delivering into courriel over LMTP
and asking courriel's lookup service (socketmap) at RCPT which recipients exist.

Each runs from its own folder (configuration, queue, logs), bound to 127.0.0.1 on a free
port, never reading /etc configuration: Postfix with ``-c DIR`` (Debian's package), Exim with
``-C FILE`` and Sendmail with ``-C FILE`` (built here with m4 from sendmail-cf), both unpacked
by ``scripts/private-mtas`` (their packages conflict with postfix). docs/INTEGRATION.md
shows the same configuration for production.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.postfix_peer import PostfixPeer
from tests.tools import unavailable

MTAS = Path(os.environ.get("COURRIEL_MTAS", "/opt/courriel-mtas"))
EXIM = MTAS / "exim/usr/sbin/exim4"
SENDMAIL = MTAS / "sendmail/usr/libexec/sendmail/sendmail"
MAKEMAP = MTAS / "sendmail/usr/libexec/sendmail/makemap"
SENDMAIL_CF = MTAS / "sendmail/usr/share/sendmail/cf"


def need_binary(path: Path, what: str) -> None:
    """Skip (fail under CI) when a privately unpacked MTA is missing, or when not root."""
    msg = ""
    if not os.access(path, os.X_OK):
        msg = f"{what} is not unpacked at {path} (run scripts/private-mtas as root)"
    elif os.geteuid() != 0:
        msg = f"{what} needs root to run privately"
    if msg:
        unavailable(msg)


def wait_banner(port: int, what: str, log: object) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if s.recv(200).startswith(b"220"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log() if callable(log) else log}")
        time.sleep(0.1)


def private_dir(prefix: str) -> Path:
    """A folder the MTAs' unprivileged users can traverse (pytest's tmp tree is 0700)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    return root


# --- Postfix -----------------------------------------------------------------------------


def postfix(port: int, lmtp: str, lookup: int) -> PostfixPeer:
    """Postfix with courriel as its virtual transport (docs/INTEGRATION.md, Postfix)."""
    extra = (
        f"virtual_mailbox_domains = socketmap:inet:127.0.0.1:{lookup}:domains\n"
        f"virtual_mailbox_maps = socketmap:inet:127.0.0.1:{lookup}:recipients\n"
        f"virtual_transport = lmtp:{lmtp}\n"
        "smtpd_recipient_restrictions = reject_unlisted_recipient, permit_mynetworks, reject\n"
    )
    return PostfixPeer(port, extra_main=extra)


# --- Exim --------------------------------------------------------------------------------

EXIM_CONF = r"""
exim_path = {exim}
primary_hostname = mta.exim.test
qualify_domain = exim.test
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
pid_file_path = {dir}/exim.pid
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
never_users = root
keep_environment =
acl_smtp_rcpt = acl_check_rcpt

# courriel's lookup service speaks socketmap: one netstring "recipients ADDRESS" per query.
COURRIEL_KEY = recipients ${{lc:$local_part@$domain}}
COURRIEL_LOOKUP = ${{readsocket{{inet:127.0.0.1:{lookup}}}{{${{strlen:COURRIEL_KEY}}:COURRIEL_KEY,}}{{5s}}{{}}{{TEMP}}}}

begin acl
acl_check_rcpt:
  warn   set acl_m_lookup = COURRIEL_LOOKUP
  accept condition = ${{if match{{$acl_m_lookup}}{{\N^\d+:OK \N}}}}
  defer  message = 4.3.0 Recipient lookup unavailable
         condition = ${{if match{{$acl_m_lookup}}{{\N^(TEMP|\d+:TEMP )\N}}}}
  deny   message = 5.1.1 User unknown

begin routers
courriel:
  driver = accept
  transport = courriel_lmtp

begin transports
courriel_lmtp:
  driver = lmtp
  socket = {socket}
  user = Debian-exim
  batch_max = 50

begin retry
*  *  F,1h,1m
"""


class Exim:
    def __init__(self, port: int, socket_path: Path, lookup: int) -> None:
        self.root = private_dir("courriel-exim-")
        self.port = port
        self.conf = self.root / "exim.conf"
        self.socket_path = socket_path
        self.lookup = lookup
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Exim:
        for d in ("spool", "log"):
            (self.root / d).mkdir()
            shutil.chown(self.root / d, "Debian-exim", "Debian-exim")
        self.conf.write_text(
            EXIM_CONF.format(
                exim=EXIM,
                dir=self.root,
                port=self.port,
                lookup=self.lookup,
                socket=self.socket_path,
            )
        )
        os.chmod(self.conf, 0o644)  # exim refuses a -C file others may write
        check = subprocess.run(
            [EXIM, "-C", self.conf, "-bV"], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise RuntimeError(f"exim -bV: {check.stdout}{check.stderr}")
        # -bdf: daemon in the foreground (stopped with the process); -odi: deliver at once.
        self.proc = subprocess.Popen([EXIM, "-C", self.conf, "-bdf", "-odi", "-q30s"])
        wait_banner(self.port, "exim", self.log)
        return self

    def log(self) -> str:
        out = []
        for name in ("mainlog", "rejectlog", "paniclog"):
            path = self.root / "log" / name
            if path.exists():
                out.append(f"--- {name}\n" + path.read_text(errors="replace"))
        return "\n".join(out)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


# --- Sendmail ----------------------------------------------------------------------------

SENDMAIL_MC = """\
include(`{cf}/m4/cf.m4')dnl
VERSIONID(`courriel LMTP test')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `mta.sendmail.test')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`QUEUE_DIR', `{dir}/queue')dnl
define(`STATUS_FILE', `{dir}/statistics')dnl
define(`confPID_FILE', `{dir}/sendmail.pid')dnl
define(`confCW_FILE', `-o {dir}/local-host-names')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`confSERVICE_SWITCH_FILE', `{dir}/service.switch')dnl
define(`confHOSTS_FILE', `{dir}/hosts')dnl
define(`ALIAS_FILE', `')dnl
define(`confHELP_FILE', `')dnl
define(`confDEF_USER_ID', `mail:mail')dnl
define(`confTO_IDENT', `0s')dnl
define(`confDELIVERY_MODE', `background')dnl
dnl A busy test machine must not make it queue (QueueLA) or refuse (RefuseLA) mail.
define(`confQUEUE_LA', `1000')dnl
define(`confREFUSE_LA', `1000')dnl
define(`confDELAY_LA', `0')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
DAEMON_OPTIONS(`Port={port}, Addr=127.0.0.1, Name=MTA')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
dnl Which addresses exist: courriel's lookup service (a socketmap), asked in check_rcpt.
LOCAL_CONFIG
Krecipients socket -T<TMPF> inet:{lookup}@127.0.0.1
C{{Courriel}}example.test
dnl Where example.test goes: the courriel LMTP mailer below.
FEATURE(`mailertable', `hash -o {dir}/mailertable')dnl
MAILER(`smtp')dnl
LOCAL_RULESETS
SLocal_check_rcpt
R$*\t$: $>canonify $1
R$+ < @ $={{Courriel}} . >\t$: < $(recipients $1 @ $2 $: NOTFOUND $) >
R< NOTFOUND >\t$#error $@ 5.1.1 $: "550 User unknown"
R< $* <TMPF> >\t$#error $@ 4.3.0 $: "451 Recipient lookup unavailable"
MAILER_DEFINITIONS
Mcourriel, P=[IPC], F=lmnqXz, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP, E=\\r\\n,
\tT=DNS/RFC822/SMTP, A=FILE {socket}
"""


class Sendmail:
    def __init__(self, port: int, socket_path: Path, lookup: int) -> None:
        self.root = private_dir("courriel-sendmail-")
        self.port = port
        self.socket_path = socket_path
        self.lookup = lookup
        self.cf = self.root / "sendmail.cf"
        self.trace = self.root / "transcript.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sendmail:
        d = self.root
        (d / "queue").mkdir(mode=0o700)
        (d / "statistics").touch()
        (d / "local-host-names").write_text("mta.sendmail.test\n")
        (d / "service.switch").write_text("hosts files\naliases files\n")
        (d / "hosts").write_text("127.0.0.1 localhost mta.sendmail.test\n")
        (d / "mailertable.txt").write_text("example.test courriel:localhost\n")
        mc = SENDMAIL_MC.format(
            cf=SENDMAIL_CF, dir=d, port=self.port, lookup=self.lookup, socket=self.socket_path
        )
        (d / "sendmail.mc").write_text(mc)
        with open(self.cf, "wb") as out:
            subprocess.run(["m4", str(d / "sendmail.mc")], stdout=out, check=True, timeout=30)
        os.chmod(self.cf, 0o644)
        with open(d / "mailertable.txt", "rb") as src:
            subprocess.run(
                [MAKEMAP, "-C", str(self.cf), "hash", str(d / "mailertable")],
                stdin=src,
                check=True,
                timeout=30,
            )
        # Sendmail sleeps a minute at start when the host name is not qualified ("vm" here):
        # it runs in its own UTS namespace named mta.sendmail.test (unshare, as root).
        # -bD: daemon in the foreground; -X: a transcript of every SMTP/LMTP exchange (no syslog here).
        command = (
            f"hostname mta.sendmail.test && exec {SENDMAIL} -C {self.cf} -bD -q30s -X {self.trace}"
        )
        with open(d / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen(
                ["unshare", "--uts", "sh", "-c", command], stdout=subprocess.DEVNULL, stderr=err
            )
        wait_banner(self.port, "sendmail", self.log)
        return self

    def log(self) -> str:
        out = []
        for name in ("stderr.log", "transcript.log"):
            path = self.root / name
            if path.exists():
                out.append(f"--- {name}\n" + path.read_text(errors="replace")[-20000:])
        return "\n".join(out)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
