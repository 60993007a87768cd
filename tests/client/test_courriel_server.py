"""``courriel mail`` against courriel itself: submission (STARTTLS and implicit TLS) with
AUTH, IMAP and POP3 from a real ``courriel serve`` on loopback with its self-signed
certificate. Each test needs the listeners it drives; while a server is still being
written its tests skip, naming the listener missing from ``serve``'s output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from courriel.mailformats.maildir import read_maildir
from tests.client.helpers import Mail, body_text, parse_strict, wait_for
from tests.client.test_dovecot_postfix import BINARY, LANGUAGES, write
from tests.harness import CourrielServer

DOMAIN = "example.test"
USERS = {f"{n}@{DOMAIN}": f"{n}-pw" for n in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    with CourrielServer(tmp_path_factory.mktemp("courriel"), users=dict(USERS), domain=DOMAIN) as srv:
        yield srv


def line_for(srv: CourrielServer, name: str) -> bool:
    return any(line.removeprefix("courriel: ").startswith(f"{name} listening") for line in srv.output)


def need_listeners(srv: CourrielServer, *names: str) -> None:
    for name in names:
        if not line_for(srv, name):
            raise AssertionError(f"courriel serve has no {name} listener: {srv.output}")


@pytest.fixture(scope="module")
def module_accounts(server: CourrielServer, tmp_path_factory: pytest.TempPathFactory) -> Mail:
    """One account file for the module (``account add`` itself is tested elsewhere)."""
    if not all(line_for(server, n) for n in ("submission", "submissions", "imap", "imaps", "pop3", "pop3s")):
        return Mail(Path("/nonexistent"))
    mail = Mail(tmp_path_factory.mktemp("mailcfg") / "accounts.toml")
    for i, (address, password) in enumerate(USERS.items()):
        name = address.partition("@")[0]
        tls = i % 2 == 1  # every other account uses implicit TLS everywhere
        mail.add_account(name, address, password,
                         imap=(server.port("imaps"), "tls") if tls else (server.port("imap"), "starttls"),
                         smtp=(server.port("submissions"), "tls") if tls else (server.port("submission"), "starttls"),
                         pop3=(server.port("pop3s"), "tls") if tls else (server.port("pop3"), "starttls"),
                         ca_file=server.cert)  # fmt: skip
    return mail


@pytest.fixture
def accounts(server: CourrielServer, module_accounts: Mail) -> Mail:
    need_listeners(server, "submission", "submissions", "imap", "imaps", "pop3", "pop3s")
    return module_accounts


def inbox(mail: Mail, who: str, count: int, folder: str = "INBOX") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = wait_for(
        lambda: (r := mail.json("-a", who, "list", folder)) and len(r) >= count and r, f"{count} in {who}'s {folder}"
    )
    return rows


@pytest.mark.parametrize(("lang", "sender", "to"), [("fr", "alice", "bob"), ("ru", "bob", "carol"),
                                                    ("he", "carol", "dave"), ("ja", "dave", "alice")])  # fmt: skip
def test_send_and_read_back_exactly(lang: str, sender: str, to: str, accounts: Mail, tmp_path: Path) -> None:
    mail = accounts
    subject, text, filename = LANGUAGES[lang]
    subject += " " + tmp_path.name  # the module's mailboxes are shared by its tests
    body = write(tmp_path / "body.txt", text)
    att = write(tmp_path / filename, BINARY)
    out = mail.run("-a", sender, "send", "--to", f"{to}@{DOMAIN}", "--subject", subject, "--body", str(body),
                   "--attach", str(att))  # fmt: skip
    assert "copy saved to Sent" in out.stdout
    rows = [r for r in inbox(mail, to, 1) if r["subject"] == subject]
    wait = rows or [r for r in wait_for(lambda: [r for r in mail.json("-a", to, "list") if r["subject"] == subject],
                                         "the message")]  # fmt: skip
    uid = str(wait[0]["uid"])
    shown = mail.json("-a", to, "read", uid)
    assert shown["text"] == text and [(a["filename"], a["size"]) for a in shown["attachments"]] == [(filename, len(BINARY))]
    msg = parse_strict(mail.raw("-a", to, uid))
    assert msg["Subject"] == subject and body_text(msg) == text
    assert {p.get_filename(): p.get_payload(decode=True) for p in msg.iter_attachments()} == {filename: BINARY}
    saved = tmp_path / "saved"
    mail.run("-a", to, "save-attachments", uid, "--dir", str(saved))
    assert (saved / filename).read_bytes() == BINARY
    sent = [r for r in mail.json("-a", sender, "list", "Sent") if r["subject"] == subject]
    assert len(sent) == 1 and "\\Seen" in sent[0]["flags"]


def test_pop3_and_imap_fetch(accounts: Mail, tmp_path: Path) -> None:
    mail = accounts
    for i in range(3):
        mail.run("-a", "erin", "send", "--to", f"frank@{DOMAIN}", "--subject", f"pop {i}", "--no-save",
                 stdin=f"line {i}\n.\n..two dots\n".encode())  # fmt: skip
    inbox(mail, "frank", 3)
    imap_dir, pop_dir = tmp_path / "imap", tmp_path / "pop"
    out = mail.run("-a", "frank", "fetch", "--protocol", "imap", "--maildir", str(imap_dir))
    assert out.stdout.startswith("3 new messages")
    assert mail.run("-a", "frank", "fetch", "--protocol", "imap", "--maildir", str(imap_dir)).stdout.startswith("0 new")
    assert mail.run("-a", "frank", "fetch", "--maildir", str(pop_dir)).stdout.startswith("3 new messages")
    assert mail.run("-a", "frank", "fetch", "--maildir", str(pop_dir)).stdout.startswith("0 new messages")
    out = mail.run("-a", "frank", "fetch", "--maildir", str(pop_dir), "--delete")
    assert "3 deleted on the server" in out.stdout
    assert mail.json("-a", "frank", "list") == []
    by_imap = sorted(i.data for i in read_maildir(imap_dir))
    by_pop = sorted(i.data for i in read_maildir(pop_dir))
    assert by_imap == by_pop and len(by_pop) == 3
    assert all(d.endswith(b".\r\n..two dots\r\n") for d in by_pop)


def test_folders_flags_move_reply(accounts: Mail) -> None:
    mail = accounts
    for subject in ("Отчёт за май", "Lunch"):
        mail.run("-a", "grace", "send", "--to", f"heidi@{DOMAIN}", "--cc", f"alice@{DOMAIN}", "--subject", subject,
                 stdin=f"{subject}\n".encode())  # fmt: skip
    rows = inbox(mail, "heidi", 2)
    uids = {r["subject"]: str(r["uid"]) for r in rows}
    m = ["-a", "heidi"]
    mail.run(*m, "folders", "create", "Архив")
    mail.run(*m, "folders", "rename", "Архив", "Archives 2026")
    assert "Archives 2026" in {f["name"] for f in mail.json(*m, "folders")}
    assert [r["subject"] for r in mail.json(*m, "search", "--subject", "отчёт")] == ["Отчёт за май"]
    mail.run(*m, "flag", uids["Lunch"], "-f", "flagged", "-f", "seen")
    assert [r["subject"] for r in mail.json(*m, "search", "--flagged")] == ["Lunch"]
    mail.run(*m, "unflag", uids["Lunch"], "-f", "flagged")
    assert set(next(r for r in mail.json(*m, "list") if r["subject"] == "Lunch")["flags"]) == {"\\Seen"}
    mail.run(*m, "reply", "--all", uids["Lunch"], stdin=b"Yes!\n")
    reply = [r for r in inbox(mail, "grace", 1) if r["subject"] == "Re: Lunch"]
    msg = parse_strict(mail.raw("-a", "grace", str(reply[0]["uid"])))
    assert msg["Cc"] == f"alice@{DOMAIN}" and body_text(msg).startswith("Yes!\n")
    mail.run(*m, "copy", uids["Lunch"], "Archives 2026")
    mail.run(*m, "move", uids["Отчёт за май"], "Archives 2026")
    assert sorted(r["subject"] for r in mail.json(*m, "list", "Archives 2026")) == ["Lunch", "Отчёт за май"]
    mail.run(*m, "delete", uids["Lunch"])
    assert mail.json(*m, "list") == []
    mail.run(*m, "folders", "delete", "Archives 2026")
    folders = {f["name"]: f for f in mail.json(*m, "folders")}
    assert "Archives 2026" not in folders and "\\Drafts" in folders["Drafts"]["flags"]
    out = mail.run(*m, "send", "--draft", "--to", f"grace@{DOMAIN}", "--bcc", f"bob@{DOMAIN}", "--subject", "Брouillon",
                   stdin=b"draft\n")  # fmt: skip
    assert "saved to Drafts" in out.stdout
    [draft] = mail.json(*m, "list", "Drafts")
    assert "\\Draft" in draft["flags"] and draft["subject"] == "Брouillon"
    assert parse_strict(mail.raw(*m, "--folder", "Drafts", str(draft["uid"])))["Bcc"] == f"bob@{DOMAIN}"


def test_errors_against_courriel(accounts: Mail) -> None:
    mail = accounts
    for cmd in (["list"], ["fetch"], ["send", "--to", f"bob@{DOMAIN}", "--no-save"]):
        proc = mail.run("-a", "alice", *cmd, env={"PW_ALICE": "wrong"}, check=False)
        assert proc.returncode == 1 and "wrong credentials" in proc.stderr and "Traceback" not in proc.stderr
    proc = mail.run("-a", "alice", "list", "Nowhere", check=False)
    assert proc.returncode == 1 and "unknown folder 'Nowhere'" in proc.stderr
