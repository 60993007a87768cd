"""Real POP3 clients against `courriel serve`: fetchmail, getmail6 (into a Maildir), mutt."""

from __future__ import annotations

import fcntl
import os
import pty
import pwd
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from courriel.mailformats.lines import to_lf
from tests.harness import CourrielServer
from tests.pop3.conftest import PASSWORD, msg, new_user, stored
from tests.tools import need

MESSAGES = [msg("first"), msg("second", body=".dot line\r\n..two dots\r\n.\r\nend\r\n"), msg("third")]


def maildir_messages(path: Path) -> list[bytes]:
    return sorted((f.read_bytes() for d in ("new", "cur") for f in (path / d).iterdir()), key=_subject)


def _subject(data: bytes) -> bytes:
    return data.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].rstrip(b"\r")


def assert_delivered(path: Path, originals: list[bytes]) -> None:
    """Each message arrived whole (an MDA may prepend Return-Path/Delivered-To, nothing else)."""
    got = maildir_messages(path)
    assert len(got) == len(originals), got
    for data, original in zip(got, sorted(originals, key=_subject)):
        assert data.endswith(to_lf(original)), (data, original)


def test_fetchmail_keep_then_delete(server: CourrielServer, tmp_path: Path) -> None:
    fetchmail = need("fetchmail")
    user = new_user(server, MESSAGES)
    maildir = tmp_path / "Maildir"
    for d in ("new", "cur", "tmp"):
        (maildir / d).mkdir(parents=True)
    mda = tmp_path / "deliver.py"  # a Maildir MDA (getmail_maildir refuses to run as root)
    mda.write_text(
        "import os, sys, time\n"
        f"name = f'{{time.time_ns()}}.{{os.getpid()}}.test'\ntmp = '{maildir}/tmp/' + name\n"
        "with open(tmp, 'wb') as fh:\n    fh.write(sys.stdin.buffer.read())\n"
        f"os.rename(tmp, '{maildir}/new/' + name)\n"
    )

    def run(keep: bool) -> subprocess.CompletedProcess[str]:
        rc = tmp_path / "fetchmailrc"
        rc.write_text(
            f'poll localhost protocol POP3 port {server.port("pop3")} uidl\n'
            f'  user "{user}" password "{PASSWORD}" is root here\n'
            f'  sslproto "TLS1.2+" sslcertck sslcertfile "{server.cert}"\n'  # STLS, certificate checked
            f'  mda "{sys.executable} {mda}" {"keep" if keep else "fetchall nokeep"}\n'
        )
        rc.chmod(0o600)
        env = {**os.environ, "FETCHMAILHOME": str(tmp_path), "HOME": str(tmp_path)}
        return subprocess.run([fetchmail, "-f", str(rc), "--invisible", "--nosyslog", "-v"], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    first = run(keep=True)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "STLS" in first.stdout + first.stderr
    assert_delivered(maildir, MESSAGES)
    assert stored(server, user) == MESSAGES  # kept on the server
    second = run(keep=True)  # UIDL: nothing new
    assert second.returncode == 1, second.stderr + second.stdout  # 1: no mail
    assert len(maildir_messages(maildir)) == 3
    third = run(keep=False)
    assert third.returncode == 0, third.stderr + third.stdout
    assert len(maildir_messages(maildir)) == 6
    assert stored(server, user) == []  # deleted on the server


def test_getmail6_keep_then_delete(server: CourrielServer, tmp_path: Path) -> None:
    getmail = need("getmail", "getmail6")
    user = new_user(server, MESSAGES)
    with tempfile.TemporaryDirectory() as tmp:  # directly under /tmp: reachable by "nobody"
        getmail6_session(getmail, server, user, Path(tmp))


def getmail6_session(getmail: str, server: CourrielServer, user: str, tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for d in ("new", "cur", "tmp"):
        (maildir / d).mkdir(parents=True)
    as_user = ""
    if os.geteuid() == 0:  # getmail delivers as another user when run as root
        nobody = pwd.getpwnam("nobody")
        for path in (tmp_path, maildir, *maildir.iterdir()):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        as_user = "user = nobody\n"

    def run(delete: bool) -> subprocess.CompletedProcess[str]:
        rc = tmp_path / "getmailrc"
        rc.write_text(
            f"[retriever]\ntype = SimplePOP3SSLRetriever\nserver = localhost\nport = {server.port('pop3s')}\n"
            f"username = {user}\npassword = {PASSWORD}\nca_certs = {server.cert}\n"
            + f"[destination]\ntype = Maildir\npath = {maildir}/\n{as_user}"
            f"[options]\ndelete = {str(delete).lower()}\nread_all = false\nverbose = 2\n"
        )
        return subprocess.run([getmail, f"--getmaildir={tmp_path}", f"--rcfile={rc}"], capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    first = run(delete=False)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "3 messages" in first.stdout and "retrieved" in first.stdout
    assert_delivered(maildir, MESSAGES)
    assert stored(server, user) == MESSAGES
    again = run(delete=False)  # getmail remembers UIDLs: nothing new
    assert again.returncode == 0 and "0 messages" in again.stdout, again.stdout
    new_message = msg("fourth")
    user_mail = [*MESSAGES, new_message]
    from tests.pop3.conftest import _add_message

    _add_message(server, user, new_message)
    last = run(delete=True)
    assert last.returncode == 0, last.stderr + last.stdout
    assert "1 messages" in last.stdout, last.stdout  # only the new one is retrieved...
    assert_delivered(maildir, user_mail)
    assert stored(server, user) == []  # ...and with delete, what it had seen goes too


def run_in_pty(args: list[str], env: dict[str, str], script: list[tuple[bytes, bytes]],
               timeout: float = 30) -> tuple[int, bytes]:  # fmt: skip
    """Run a curses program (mutt) on a pseudo-terminal as a user would: wait until the screen
    shows each ``expect``, then type its keys."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out = bytearray()
    seen = 0  # what the next expect is searched in starts here
    steps = list(script)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if steps and steps[0][0] in out[seen:]:
                seen = out.index(steps[0][0], seen) + len(steps[0][0])
                os.write(master, steps.pop(0)[1])
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the program ended
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
    finally:
        os.close(master)
        code = proc.wait(timeout=10)
    return code, bytes(out)


def test_mutt_reads_copies_and_deletes(server: CourrielServer, tmp_path: Path) -> None:
    mutt = need("mutt")
    user = new_user(server, MESSAGES)
    out = tmp_path / "copy.mbox"
    rc = tmp_path / "muttrc"
    rc.write_text(
        f'set pop_user="{user}"\nset pop_pass="{PASSWORD}"\nset pop_authenticators="user"\n'
        f'set certificate_file="{server.cert}"\nset ssl_force_tls=yes\nset ssl_verify_host=yes\n'
        'set confirmcreate=no\nset confirmappend=no\nset quit=yes\nset delete=yes\nset move=no\n'
        'set mbox_type=mbox\nset header_cache=""\nset message_cachedir=""\nset sort=subject\n'
        f'set mail_check=0\nset timeout=1\nset folder="{tmp_path}"\nset spoolfile="{tmp_path}/spool"\n'
    )
    env = {**os.environ, "HOME": str(tmp_path), "TERM": "vt100"}
    url = f"pops://localhost:{server.port('pop3s')}/"
    # read every message and copy it to an mbox, then delete "second" and sync (DELE, QUIT)
    copy = b"C" + str(out).encode() + b"\r"  # C: copy-message, j: next message
    # typed ahead at once, once the index shows; D: delete-pattern, $: sync (DELE, QUIT), q: quit
    script = [(b"Msgs:3", copy + b"j" + copy + b"j" + copy + b"D~s second\r$q")]
    code, screen = run_in_pty([mutt, "-n", "-F", str(rc), "-f", url], env, script)
    assert code == 0, screen.decode(errors="replace")[-2000:]
    copied = out.read_bytes()
    for original in MESSAGES:
        assert to_lf(original).split(b"\n\n", 1)[1].replace(b"\nFrom ", b"\n>From ") in copied
        assert b"Subject: " + _subject(original) in copied
    assert stored(server, user) == [MESSAGES[0], MESSAGES[2]]
