"""mutt over IMAP, driven by pushed keystrokes in a pseudo-terminal (script(1)): reading,
flagging, marking unread, saving (moving) to another folder and deleting, once over the
cleartext port with LOGIN and once over STARTTLS; verified on the server with imaplib."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.imap_interop.clients import ALICE, BOB, Clients, fetch, ok
from tests.imap_interop.peers import Target
from tests.tools import need


def _msg(user: str, i: int) -> bytes:
    return (
        f"From: Sender {i} <s{i}@example.org>\r\nTo: {user}\r\nSubject: mutt {i}\r\n"
        f"Date: Mon, 0{i} Mar 2026 10:00:00 +0000\r\nMessage-ID: <mutt.{i}.{user}>\r\n\r\n"
        f"Body of message {i}.\r\nSecond line.\r\n"
    ).encode()


def _muttrc(target: Target, user: str, home: Path, tls: bool) -> Path:
    rc = home / "muttrc"
    security = (
        f'set ssl_starttls = yes\nset ssl_force_tls = yes\nset ssl_ca_certificates_file = "{target.cert}"\n'
        if tls
        else "set ssl_starttls = no\nset ssl_force_tls = no\n"
    )
    rc.write_text(
        f"""set imap_user = "{user}"
set imap_pass = "{target.users[user]}"
set imap_authenticators = "{"plain" if tls else "login"}"
set folder = "imap://{target.host}:{target.imap_port}/"
set spoolfile = "+INBOX"
{security}set sort = mailbox-order
set resolve = no
set confirmcreate = no
set confirmappend = no
set delete = yes
set quit = yes
set move = no
set mark_old = no
set pager_stop = yes
set wait_key = no
set header_cache = ""
set message_cachedir = ""
set imap_passive = yes
set timeout = 1
set sleep_time = 0
set record = ""
"""
    )
    return rc


KEYS = (
    "<first-entry><flag-message>"  # 1: \Flagged
    "<next-entry><display-message><exit>"  # 2: read, so \Seen
    "<next-entry><save-message>=Moved<enter>"  # 3: saved to Moved and deleted here
    "<next-entry><delete-message>"  # 4: deleted
    "<next-entry><next-entry><toggle-new>"  # 6 (was \Seen): unread again
    "<sync-mailbox><quit>"
)


@pytest.mark.parametrize("tls", [False, True], ids=["login-cleartext", "starttls"])
def test_mutt_read_flag_move_delete(target: Target, clients: Clients, tmp_path: Path, tls: bool) -> None:
    mutt = need("mutt")
    user = BOB if tls else ALICE
    conn = clients.login(user)
    for i in range(1, 7):
        ok(conn.append("INBOX", "(\\Seen)" if i == 6 else None, None, _msg(user, i)))
    rc = _muttrc(target, user, tmp_path, tls)
    env = {"HOME": str(tmp_path), "TERM": "xterm", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    command = f"{mutt} -n -F {rc} -e 'push \"{KEYS}\"'"
    proc = subprocess.run(
        ["script", "-qec", command, "/dev/null"], env=env, stdin=subprocess.DEVNULL,
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    screen = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, f"mutt failed ({proc.returncode}):\n{screen[-3000:]}\n{target.log}"

    ok(conn.select("INBOX", readonly=True))
    got = fetch(conn, "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    state = {
        v[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip(): {f.decode() for f in v[b"FLAGS"]} - {"\\Recent"}
        for v in got.values()
    }
    assert set(state) == {"Subject: mutt 1", "Subject: mutt 2", "Subject: mutt 5", "Subject: mutt 6"}, (state, screen[-2000:])
    assert state["Subject: mutt 1"] == {"\\Flagged"}
    assert state["Subject: mutt 2"] == {"\\Seen"}
    assert state["Subject: mutt 5"] == set()
    assert state["Subject: mutt 6"] == set()
    ok(conn.select("Moved", readonly=True))
    moved = fetch(conn, "1:*", "(BODY.PEEK[])")
    assert [v[b"BODY[]"] for v in moved.values()] == [_msg(user, 3)]  # byte-identical
