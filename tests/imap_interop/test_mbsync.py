"""mbsync (isync) over IMAPS synchronising a 5,000-message INBOX both ways (syncscenario.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.imap_interop.clients import ALICE, Clients
from tests.imap_interop.peers import Target
from tests.imap_interop.syncscenario import two_way_sync
from tests.tools import need


def test_mbsync_two_way(target: Target, clients: Clients, tmp_path: Path) -> None:
    mbsync = need("mbsync", "isync")
    mail = tmp_path / "mail"
    mail.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"""IMAPAccount courriel
Host {target.host}
Port {target.imaps_port}
User {ALICE}
Pass {target.users[ALICE]}
SSLType IMAPS
CertificateFile {target.cert}

IMAPStore remote
Account courriel

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX

Channel inbox
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
"""
    )

    def sync() -> None:
        proc = subprocess.run([mbsync, "-c", str(rc), "-a"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"mbsync failed:\n{proc.stdout}\n{proc.stderr}\n{target.log}"
        assert "error" not in proc.stderr.lower(), proc.stderr

    # mbsync writes an X-TUID header into every message it copies (to find it again)
    two_way_sync(target, clients, tmp_path, sync, mail / "INBOX", strip=(b"X-TUID",))
