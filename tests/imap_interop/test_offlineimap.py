"""offlineimap3 over IMAPS synchronising a 5,000-message INBOX both ways (syncscenario.py).

Not over STARTTLS: offlineimap's imaplib2 switches its reader thread to TLS racily and fails
now and then after STARTTLS against Dovecot as well (about 1 run in 40 here); STARTTLS is
covered by imaplib, IMAPClient and mutt. imaplib2 checks the certificate's DNS names only,
so the host is "localhost" (in the self-signed certificate; the server is on 127.0.0.1).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.imap_interop.clients import ALICE, Clients
from tests.imap_interop.peers import Target
from tests.imap_interop.syncscenario import two_way_sync
from tests.tools import need


def test_offlineimap_two_way(target: Target, clients: Clients, tmp_path: Path) -> None:
    offlineimap = need("offlineimap", "offlineimap3")
    mail = tmp_path / "mail"
    mail.mkdir()
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        f"""[general]
accounts = courriel
metadata = {tmp_path}/metadata
ui = basic

[Account courriel]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {mail}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {target.imaps_port}
remoteuser = {ALICE}
remotepass = {target.users[ALICE]}
ssl = yes
sslcacertfile = {target.cert}
folderfilter = lambda name: name == "INBOX"
createfolders = False
expunge = yes
"""
    )

    def sync() -> None:
        proc = subprocess.run([offlineimap, "-c", str(rc), "-o", "-u", "basic"], capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"offlineimap failed:\n{out[-4000:]}\n{target.log}"
        assert "ERROR" not in out, out[-4000:]

    # offlineimap syncs Maildir's T (trashed) as the \\Deleted flag and leaves expunging to the user
    two_way_sync(target, clients, tmp_path, sync, mail / "INBOX", trash_expunges=False)
