"""Driving ``courriel mail`` as a user would: a subprocess per command, an account file
of its own, passwords in environment variables."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from tests.tools import need


@dataclass
class Mail:
    """``courriel mail --config FILE ...`` with a clean environment."""

    config: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("COURRIEL_")}
        base.pop("EDITOR", None)
        base.pop("VISUAL", None)
        self.env = {**base, "LC_ALL": "C.UTF-8", "COLUMNS": "200", **self.env}

    def run(self, *args: str, stdin: bytes | None = b"", check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        cmd = [sys.executable, "-m", "courriel", "mail", "--config", str(self.config), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, env={**self.env, **(env or {})}, timeout=180)
        out = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())
        if check and proc.returncode != 0:
            raise AssertionError(f"courriel mail {' '.join(args)} exited {proc.returncode}: {out.stderr}{out.stdout}")
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def raw(self, *args: str) -> bytes:
        cmd = [sys.executable, "-m", "courriel", "mail", "--config", str(self.config), "read", "--raw", *args]
        proc = subprocess.run(cmd, capture_output=True, env=self.env, timeout=180)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout

    def add_account(self, name: str, address: str, password: str, *, imap: tuple[int, str] | None = None,
                    smtp: tuple[int, str] | None = None, pop3: tuple[int, str] | None = None,
                    ca_file: Path | None = None, extra: tuple[str, ...] = ()) -> None:  # fmt: skip
        var = "PW_" + "".join(c if c.isalnum() else "_" for c in name).upper()
        self.env[var] = password
        args = ["account", "add", name, "--address", address, "--password-env", var]
        for service, spec in (("imap", imap), ("smtp", smtp), ("pop3", pop3)):
            if spec is not None:
                args += [f"--{service}", f"127.0.0.1:{spec[0]}", f"--{service}-tls", spec[1]]
        if ca_file is not None:
            args += ["--ca-file", str(ca_file)]
        self.run(*args, *extra)


def parse_strict(raw: bytes) -> EmailMessage:
    """Parse with the stdlib email package; fail on any defect in any part or header."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    for part in msg.walk():
        assert not part.defects, f"defects in {part.get_content_type()}: {part.defects}"
        for name, value in part.items():
            defects = [str(d) for d in getattr(value, "defects", ())]
            assert not defects, f"defects in {name}: {defects}"
    return msg


def body_text(msg: EmailMessage, kind: str = "plain") -> str:
    """The decoded text of the message's ``kind`` body part, line ends as "\\n"."""
    part = msg.get_body((kind,))
    assert part is not None, f"no text/{kind} body"
    return str(part.get_content()).replace("\r\n", "\n")


def wait_for(predicate: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def run_on_pty(cmd: list[str], env: dict[str, str], answer: bytes, prompt: bytes) -> tuple[int, bytes]:
    """Run ``cmd`` on a pseudo-terminal, type ``answer`` once ``prompt`` appears:
    (exit status, everything the terminal showed)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    shown, typed = b"", False
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None or select.select([master], [], [], 0)[0]:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"{cmd} did not finish: {shown[-300:]!r}")
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                shown += chunk
            if not typed and prompt in shown:
                os.write(master, answer)
                typed = True
        return proc.wait(timeout=30), shown
    finally:
        os.close(master)


MUTTRC = """set folder=@WORK@
set mbox_type=Maildir
set pipe_decode=yes
set wait_key=no
set quit=yes
set move=no
set charset=utf-8
set sort=date-received
set header_cache=""
folder-hook . 'push "<pipe-message>cat > @OUT@<enter><view-attachments><last-entry><save-entry><enter><exit><quit>"'
"""


def mutt_open(maildir: Path, work: Path) -> tuple[str, dict[str, bytes]]:
    """Open the first message of ``maildir`` in mutt (on a pseudo-terminal, driven by
    pushed keys): (the message as mutt decodes it for a pipe, {file name: bytes} of the
    last attachment saved under the name mutt proposes)."""
    import pty

    mutt = need("mutt")
    work.mkdir(parents=True, exist_ok=True)
    out = work / "decoded.txt"
    rc = work / "muttrc"
    rc.write_text(MUTTRC.replace("@OUT@", str(out)).replace("@WORK@", str(work)))
    saved = work / "saved"
    saved.mkdir()
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "LC_ALL": "C.UTF-8", "HOME": str(work)}
    proc = subprocess.Popen([mutt, "-n", "-F", str(rc), "-R", "-f", str(maildir)], stdin=slave, stdout=slave,
                            stderr=slave, env=env, cwd=saved, close_fds=True)  # fmt: skip
    os.close(slave)
    deadline = time.monotonic() + 60
    screen = b""
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"mutt did not finish; its screen ended with {screen[-600:]!r}")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    screen = (screen + os.read(master, 65536))[-4000:]
                except OSError:
                    break
        proc.wait(timeout=30)
    finally:
        os.close(master)
    assert out.exists(), "mutt did not pipe the message"
    return out.read_text("utf-8"), {p.name: p.read_bytes() for p in saved.iterdir()}
