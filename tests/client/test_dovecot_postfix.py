"""``courriel mail`` against Debian's Dovecot (IMAP, POP3) and Postfix (submission with
SASL through Dovecot), on loopback with a self-signed certificate; mutt and the stdlib
email package read what it sends."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from courriel.mailformats.lines import to_crlf
from courriel.mailformats.maildir import read_maildir
from tests.client.helpers import Mail, body_text, mutt_open, parse_strict, run_on_pty
from tests.client.peers import Peers

AddUser = Callable[..., str]

# (subject, text, attachment file name) in French, Russian, Hebrew and Japanese.
LANGUAGES = {
    "fr": ("Réunion d'été : café, crème & œufs", "Bonjour à tous,\nLe procès-verbal est joint. « Merci » !\n",
           "procès-verbal été.txt"),
    "ru": ("Отчёт за третий квартал", "Здравствуйте!\nОтчёт во вложении.\n", "отчёт квартал.pdf"),
    "he": ("שלום עולם: דו\"ח חודשי", "שלום,\nהדו\"ח מצורף.\n", "דו\"ח חודשי.docx"),
    "ja": ("日本語の件名のテストです。長い件名が正しく折り返されるか確認します", "こんにちは。\n報告書を添付します。\n", "報告書 2026.pdf"),
}  # fmt: skip
BINARY = bytes(range(256)) * 40 + b"\r\n.\r\n\x00end"


@pytest.fixture
def add_user(peers: Peers, mail: Mail) -> AddUser:
    """Add an account for a fresh pool user; returns its address. ``mode`` picks the
    TLS variant (both are exercised)."""

    def add(name: str, mode: str = "starttls", display: str = "") -> str:
        address, password = peers.user()
        imap = (peers.imap, "starttls") if mode == "starttls" else (peers.imaps, "tls")
        smtp = (peers.submission, "starttls") if mode == "starttls" else (peers.submissions, "tls")
        pop3 = (peers.pop3, "starttls") if mode == "starttls" else (peers.pop3s, "tls")
        mail.add_account(name, f"{display} <{address}>" if display else address, password,
                         imap=imap, smtp=smtp, pop3=pop3, ca_file=peers.cert)  # fmt: skip
        return address

    return add


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_send_with_attachments_reads_back_exactly(lang: str, peers: Peers, mail: Mail, add_user: AddUser,
                                                  tmp_path: Path) -> None:  # fmt: skip
    subject, text, filename = LANGUAGES[lang]
    add_user("a", "starttls" if lang in ("fr", "he") else "tls", display={"fr": "Élodie Brûlé", "ru": "Зоя Петрова",
                 "he": "דנה כהן", "ja": "山田 太郎"}[lang])  # fmt: skip
    b = add_user("b")
    c = add_user("c")
    body = write(tmp_path / "body.txt", text)
    att_text = write(tmp_path / "files" / f"{lang}-notes.txt", text * 3)
    att_bin = write(tmp_path / "files" / filename, BINARY)
    out = mail.run("-a", "a", "send", "--to", b, "--bcc", c, "--subject", subject, "--body", str(body),
                   "--attach", str(att_text), str(att_bin))  # fmt: skip
    assert "sent to 2 recipients" in out.stdout and "copy saved to Sent" in out.stdout
    peers.wait_delivered(b, 1)
    peers.wait_delivered(c, 1)

    [row] = mail.json("-a", "b", "list")
    assert row["subject"] == subject
    shown = mail.json("-a", "b", "read", str(row["uid"]))
    assert shown["subject"] == subject and shown["text"] == text and shown["defects"] == []
    assert [(x["filename"], x["size"]) for x in shown["attachments"]] == [
        (att_text.name, len((text * 3).encode())), (filename, len(BINARY))]  # fmt: skip
    saved = tmp_path / "saved"
    mail.run("-a", "b", "save-attachments", str(row["uid"]), "--dir", str(saved))
    assert (saved / filename).read_bytes() == BINARY
    assert (saved / att_text.name).read_bytes() == (text * 3).encode()
    mail.run("-a", "b", "save-attachments", str(row["uid"]), "--dir", str(saved), "--index", "2")
    stem, _, ext = filename.rpartition(".")
    assert (saved / f"{stem}-1.{ext}").read_bytes() == BINARY  # never overwrites
    shown_text = mail.run("-a", "b", "read", str(row["uid"]), "--peek").stdout
    assert subject in shown_text and filename in shown_text and text in shown_text

    raw = mail.raw("-a", "b", str(row["uid"]))
    msg = parse_strict(raw)
    assert msg["Subject"] == subject and "Bcc" not in msg and msg["Message-ID"] and msg["Date"]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998 and raw.isascii()
    files = {p.get_filename(): p.get_payload(decode=True) for p in msg.iter_attachments()}
    assert files == {att_text.name: (text * 3).encode(), filename: BINARY}
    assert next(p.get_content_charset() for p in msg.iter_attachments()) == "utf-8"
    assert body_text(msg) == text

    [sent] = mail.json("-a", "a", "list", "Sent")
    sent_raw = mail.raw("-a", "a", "--folder", "Sent", str(sent["uid"]))
    sent_msg = parse_strict(sent_raw)
    assert sent_msg["Bcc"] == c and sent_msg["Message-ID"] == msg["Message-ID"]
    assert "\\Seen" in sent["flags"]


def test_opens_in_mutt(peers: Peers, mail: Mail, add_user: AddUser, tmp_path: Path) -> None:
    add_user("a", display="Ōta Jūrō")
    b = add_user("b")
    subject, text, filename = LANGUAGES["ja"]
    body = write(tmp_path / "body.txt", LANGUAGES["fr"][1] + text)
    att = write(tmp_path / filename, BINARY)
    mail.run("-a", "a", "send", "--to", b, "--subject", subject + " — " + LANGUAGES["ru"][0],
             "--body", str(body), "--attach", str(att))  # fmt: skip
    peers.wait_delivered(b, 1)
    maildir = tmp_path / "local"
    mail.run("-a", "b", "fetch", "--maildir", str(maildir))
    decoded, saved = mutt_open(maildir, tmp_path / "mutt")
    assert f"Subject: {subject} — {LANGUAGES['ru'][0]}" in decoded.replace("\n ", " ")
    assert "From: Ōta Jūrō <" in decoded
    assert LANGUAGES["fr"][1] + text in decoded
    assert saved == {filename: BINARY}


@pytest.mark.parametrize(("charset", "text", "expected"), [
    ("iso-8859-15", "plain ASCII text\n", "us-ascii"),
    ("iso-8859-15", "Prix : 20 € l'été, œuvre\n", "iso-8859-15"),
    ("iso-8859-15", "Цена: 20 €\n", "utf-8"),
    ("utf-8", "Prix : 20 €\n", "utf-8"),
])  # fmt: skip
def test_charset_per_part_and_drafts(charset: str, text: str, expected: str, mail: Mail, add_user: AddUser,
                                     tmp_path: Path) -> None:  # fmt: skip
    add_user("a")
    body = write(tmp_path / "body.txt", text)
    html = write(tmp_path / "body.html", f"<p>{text}</p>")
    out = mail.run("send", "--draft", "--to", "someone@example.org", "--bcc", "hidden@example.org",
                   "--subject", "Brouillon " + text.strip(), "--charset", charset, "--body", str(body),
                   "--html", str(html))  # fmt: skip
    assert "saved to Drafts" in out.stdout
    [row] = mail.json("list", "Drafts")
    assert "\\Draft" in row["flags"]
    raw = mail.raw("--folder", "Drafts", str(row["uid"]))
    msg = parse_strict(raw)
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content_charset() == expected and rich.get_content_charset() == expected
    assert body_text(msg) == text and msg["Bcc"] == "hidden@example.org"


def test_html_only_is_shown_as_text(peers: Peers, mail: Mail, add_user: AddUser, tmp_path: Path) -> None:
    add_user("a")
    b = add_user("b")
    html = write(tmp_path / "m.html", "<html><head><style>p{}</style></head><body><p>Première ligne</p>"
                 "<p>Вторая &amp; última</p><script>alert(1)</script></body></html>")  # fmt: skip
    mail.run("send", "--to", b, "--subject", "html", "--html", str(html))
    peers.wait_delivered(b, 1)
    shown = mail.json("-a", "b", "read", "1", "--html")
    assert shown["from_html"] and "Première ligne" in shown["text"] and "Вторая & última" in shown["text"]
    assert "alert" not in shown["text"] and "<p>" not in shown["text"]
    plain = mail.run("-a", "b", "read", "1").stdout  # the derived text alternative
    assert "Première ligne" in plain and "Вторая & última" in plain


def test_pop3_fetch_keeps_then_deletes_and_never_fetches_twice(peers: Peers, mail: Mail, add_user: AddUser,
                                                                tmp_path: Path) -> None:  # fmt: skip
    add_user("a")
    b = add_user("b", "tls")
    for i in range(3):
        mail.run("send", "--to", b, "--subject", f"n°{i}", "--no-save", stdin=f"message {i}\n.\n..dots\n".encode())
    peers.wait_delivered(b, 3)
    local = tmp_path / "Mail"
    out = mail.run("-a", "b", "fetch", "--maildir", str(local))
    assert out.stdout.startswith("3 new messages") and "0 already fetched" in out.stdout
    out = mail.run("-a", "b", "fetch", "--maildir", str(local))
    assert out.stdout.startswith("0 new messages") and "3 already fetched" in out.stdout
    mail.run("send", "--to", b, "--subject", "n°3", "--no-save", stdin=b"message 3\n")
    peers.wait_delivered(b, 4)
    out = mail.run("-a", "b", "fetch", "--maildir", str(local), "--delete")
    assert out.stdout.startswith("1 new message ") and "4 deleted on the server" in out.stdout
    assert mail.json("-a", "b", "list") == []
    items = list(read_maildir(local))
    assert sorted(parse_strict(i.data)["Subject"] for i in items) == [f"n°{i}" for i in range(4)]
    # byte for byte what Dovecot stored (dot-stuffing undone)
    bodies = {parse_strict(i.data)["Subject"]: i.data for i in items}
    assert bodies["n°0"].endswith(b"\r\nmessage 0\r\n.\r\n..dots\r\n")
    out = mail.run("-a", "b", "fetch", "--maildir", str(local))
    assert out.stdout.startswith("0 new messages") and len(list(read_maildir(local))) == 4


def test_imap_fetch_keeps_flags_and_resumes(peers: Peers, mail: Mail, add_user: AddUser, tmp_path: Path) -> None:
    add_user("a")
    b = add_user("b")
    for i in range(2):
        mail.run("send", "--to", b, "--subject", f"imap {i}", "--no-save", stdin=b"hello\n")
    peers.wait_delivered(b, 2)
    mail.run("-a", "b", "flag", "1", "-f", "seen", "-f", "flagged")
    local = tmp_path / "imap"
    out = mail.run("-a", "b", "fetch", "--protocol", "imap", "--maildir", str(local))
    assert out.stdout.startswith("2 new messages")
    files = sorted(p.name for sub in ("new", "cur") for p in (local / sub).iterdir())
    assert any(name.endswith(":2,FS") for name in files)
    delivered = sorted(to_crlf(p.read_bytes()) for p in peers.wait_delivered(b, 2))
    assert sorted(i.data for i in read_maildir(local)) == delivered
    mail.run("send", "--to", b, "--subject", "imap 2", "--no-save", stdin=b"third\n")
    peers.wait_delivered(b, 3)
    out = mail.run("-a", "b", "fetch", "--protocol", "imap", "--maildir", str(local))
    assert out.stdout.startswith("1 new message ") and "2 already fetched" in out.stdout
    out = mail.run("-a", "b", "fetch", "--protocol", "imap", "--maildir", str(local), "--delete")
    assert out.stdout.startswith("0 new messages") and "3 deleted on the server" in out.stdout
    assert mail.json("-a", "b", "list") == [] and len(list(read_maildir(local))) == 3


def test_folders_search_move_copy_flags_delete(peers: Peers, mail: Mail, add_user: AddUser) -> None:
    add_user("a")
    b = add_user("b")
    for subject in ("Отчёт за май", "Lunch on Friday", "Réunion lundi"):
        mail.run("send", "--to", b, "--subject", subject, "--no-save", stdin=f"{subject}\n".encode())
    peers.wait_delivered(b, 3)
    m = ["-a", "b"]
    mail.run(*m, "folders", "create", "Архив")
    mail.run(*m, "folders", "create", "Projets 2026")
    names = {f["name"]: f for f in mail.json(*m, "folders")}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Архив", "Projets 2026"} <= set(names)
    assert "\\Sent" in names["Sent"]["flags"]
    table = mail.run(*m, "folders").stdout
    assert "Архив" in table and "\\Sent" in table and "Projets 2026" in table
    mail.run(*m, "folders", "rename", "Projets 2026", "Проекты")
    mail.run(*m, "folders", "subscribe", "Проекты")
    names = {f["name"]: f for f in mail.json(*m, "folders")}
    assert "Projets 2026" not in names and names["Проекты"]["subscribed"]
    mail.run(*m, "folders", "unsubscribe", "Проекты")
    assert not {f["name"]: f for f in mail.json(*m, "folders")}["Проекты"]["subscribed"]

    found = mail.json(*m, "search", "--subject", "отчёт")
    assert [r["subject"] for r in found] == ["Отчёт за май"]
    assert [r["uid"] for r in mail.json(*m, "search", "--body", "Lunch")] == [2]
    assert len(mail.json(*m, "search", "--unseen")) == 3
    assert len(mail.json(*m, "search", "--since", "2000-01-01", "--before", "2999-01-01")) == 3
    assert mail.json(*m, "search", "--before", "2000-01-01") == []
    mail.run(*m, "flag", "1", "2")
    mail.run(*m, "flag", "2", "-f", "seen", "-f", "$Work")
    mail.run(*m, "unflag", "1")
    flags = {r["uid"]: set(r["flags"]) for r in mail.json(*m, "list")}
    assert flags == {1: set(), 2: {"\\Flagged", "\\Seen", "$Work"}, 3: set()}
    assert [r["uid"] for r in mail.json(*m, "search", "--flagged")] == [2]
    assert [r["uid"] for r in mail.json(*m, "search", "KEYWORD", "$Work")] == [2]

    mail.run(*m, "copy", "1", "3", "Архив")
    mail.run(*m, "move", "2", "Проекты")
    assert [r["subject"] for r in mail.json(*m, "list", "Архив")] == ["Отчёт за май", "Réunion lundi"]
    assert [r["subject"] for r in mail.json(*m, "list", "Проекты")] == ["Lunch on Friday"]
    assert [r["uid"] for r in mail.json(*m, "list")] == [1, 3]
    assert "moved 1 to Trash" in mail.run(*m, "delete", "--trash", "1").stdout
    mail.run(*m, "delete", "3")
    assert mail.json(*m, "list") == []
    assert [r["subject"] for r in mail.json(*m, "list", "Trash")] == ["Отчёт за май"]
    mail.run(*m, "folders", "delete", "Проекты")
    assert "Проекты" not in {f["name"] for f in mail.json(*m, "folders")}

    # paging: newest first
    page = mail.run(*m, "list", "Архив", "--page-size", "1").stdout
    assert "Réunion lundi" in page and "page 1 of 2" in page and "Отчёт" not in page
    page2 = mail.run(*m, "list", "Архив", "--page-size", "1", "--page", "2").stdout
    assert "Отчёт за май" in page2


def test_reply_reply_all_forward(peers: Peers, mail: Mail, add_user: AddUser, tmp_path: Path) -> None:
    a = add_user("a", display="Anne Ämter")
    b = add_user("b")
    c = add_user("c")
    att = write(tmp_path / "plan été.pdf", BINARY)
    mail.run("send", "--to", b, "--cc", c, "--subject", "Planning d'été", "--attach", str(att),
             stdin="Voici le planning.\nÀ bientôt\n".encode())  # fmt: skip
    peers.wait_delivered(b, 1)
    original = parse_strict(mail.raw("-a", "b", "1"))

    mail.run("-a", "b", "reply", "1", stdin=b"D'accord.\n")
    peers.wait_delivered(a, 1)
    reply = parse_strict(mail.raw("-a", "a", "1"))
    assert reply["Subject"] == "Re: Planning d'été" and reply["To"] == f"Anne Ämter <{a}>" and reply["Cc"] is None
    assert reply["In-Reply-To"] == original["Message-ID"] and reply["References"] == original["Message-ID"]
    text = body_text(reply)
    assert text.startswith("D'accord.\n") and "> Voici le planning.\n> À bientôt\n" in text
    assert "\\Answered" in mail.json("-a", "b", "list")[0]["flags"]

    mail.run("-a", "b", "reply", "--all", "1", stdin=b"Pour tous.\n")
    peers.wait_delivered(c, 2)
    everyone = parse_strict(mail.raw("-a", "a", "2"))
    assert everyone["Subject"] == "Re: Planning d'été" and everyone["Cc"] == c and b not in str(everyone["To"])

    d = add_user("d")
    mail.run("-a", "b", "forward", "1", "--to", d, stdin=b"FYI\n")
    mail.run("-a", "b", "forward", "1", "--to", d, "--as-attachment", stdin=b"attached\n")
    peers.wait_delivered(d, 2)
    inline = parse_strict(mail.raw("-a", "d", "1"))
    assert inline["Subject"] == "Fwd: Planning d'été"
    assert "-------- Forwarded Message --------" in body_text(inline)
    assert {p.get_filename(): p.get_payload(decode=True) for p in inline.iter_attachments()} == {"plan été.pdf": BINARY}
    wrapped = parse_strict(mail.raw("-a", "d", "2"))
    [part] = [p for p in wrapped.iter_attachments()]
    assert part.get_content_type() == "message/rfc822"
    assert part.get_content()["Message-ID"] == original["Message-ID"]
    assert "$Forwarded" in mail.json("-a", "b", "list")[0]["flags"]


def test_compose_in_editor(peers: Peers, mail: Mail, add_user: AddUser, tmp_path: Path) -> None:
    add_user("a")
    b = add_user("b")
    att = write(tmp_path / "заметки.txt", "заметки\n")
    script = write(tmp_path / "editor.py", (
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "t = p.read_text('utf-8')\n"
        f"t = t.replace('To: \\n', 'To: Борис <{b}>\\n').replace('Subject: \\n', 'Subject: Из редактора\\n')\n"
        f"t = t.replace('\\n\\n', '\\nAttach: {att}\\n\\n', 1) + 'Текст из редактора.\\n'\n"
        "p.write_text(t, 'utf-8')\n"
    ))  # fmt: skip
    editor = f"{sys.executable} {script}"
    out = mail.run("send", "--edit", env={"EDITOR": editor})
    assert "sent to 1 recipient" in out.stdout
    peers.wait_delivered(b, 1)
    msg = parse_strict(mail.raw("-a", "b", "1"))
    assert msg["Subject"] == "Из редактора" and msg["To"] == f"Борис <{b}>"
    assert body_text(msg) == "Текст из редактора.\n"
    assert [p.get_filename() for p in msg.iter_attachments()] == ["заметки.txt"]
    # an unchanged file aborts
    aborted = mail.run("send", "--edit", "--to", b, env={"EDITOR": "true"}, check=False)
    assert aborted.returncode == 1 and "aborted" in aborted.stderr


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    rc, out, err = proc.returncode, proc.stdout, proc.stderr
    assert rc == 1, (rc, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return str(err)


def test_clear_errors(peers: Peers, mail: Mail, add_user: AddUser, tmp_path: Path) -> None:
    address = add_user("a")
    wrong = {"PW_A": "not-the-password"}
    for cmd in (["list"], ["fetch", "--maildir", str(tmp_path / "x")], ["send", "--to", address, "--no-save"]):
        err = _one_line_error(mail.run(*cmd, env=wrong, check=False), "wrong credentials")
        assert "not-the-password" not in err
    _one_line_error(mail.run("list", "No/Such/Folder", check=False), "unknown folder 'No/Such/Folder'")
    _one_line_error(mail.run("fetch", "--maildir", "/proc/courriel-test", check=False), "cannot write to /proc/courriel-test")
    _one_line_error(mail.run("read", "999", check=False), "no message with UID 999")
    _one_line_error(mail.run("move", "1", "Elsewhere", check=False), "no message with UID 1")
    mail.add_account("untrusted", address, "x", imap=(peers.imaps, "tls"), smtp=(peers.submission, "starttls"),
                     pop3=(peers.pop3, "starttls"))  # fmt: skip
    for cmd in (["list"], ["send", "--to", address], ["fetch", "--maildir", str(tmp_path / "y")]):
        _one_line_error(mail.run("-a", "untrusted", *cmd, check=False), "TLS failure", "certificate not trusted")
    from tests.harness import free_port

    closed = free_port()
    mail.add_account("down", address, "x", imap=(closed, "tls"), smtp=(closed, "starttls"), pop3=(closed, "tls"))
    for cmd in (["list"], ["send", "--to", address], ["fetch"]):
        _one_line_error(mail.run("-a", "down", *cmd, check=False), "cannot reach", "connection refused")
    _one_line_error(mail.run("-a", "nobody", "list", check=False), "no account 'nobody'")
    _one_line_error(mail.run("send", "--to", "not an address", check=False), "not an e-mail address")
    _one_line_error(mail.run("send", "--to", address, "--attach", str(tmp_path / "missing.pdf"), check=False),
                    "cannot attach")  # fmt: skip


def test_password_prompt_on_a_terminal(peers: Peers, mail: Mail) -> None:
    address, password = peers.user()
    mail.add_account("asked", address, "unused", imap=(peers.imaps, "tls"), ca_file=peers.cert)
    text = mail.config.read_text().replace('password_env = "PW_ASKED"\n', "")
    mail.config.write_text(text)
    cmd = [sys.executable, "-m", "courriel", "mail", "--config", str(mail.config), "folders", "--json"]
    env = {k: v for k, v in mail.env.items() if k != "PW_ASKED"}
    status, shown = run_on_pty(cmd, env, password.encode() + b"\n", b"Password for ")
    assert status == 0 and b'"INBOX"' in shown and password.encode() not in shown, shown
    status, shown = run_on_pty(cmd, env, b"wrong\n", b"Password for ")
    assert status == 1 and b"wrong credentials" in shown and b"Traceback" not in shown


def test_account_file(mail: Mail, tmp_path: Path) -> None:
    mail.add_account("work", "Zoé Ünal <zoe@example.org>", "pw", imap=(993, "tls"), smtp=(587, "starttls"),
                     extra=("--user", "zoe", "--default"))  # fmt: skip
    mail.run("account", "add", "home", "--address", "zoe@home.example", "--imap", "imap.home.example",
             "--smtp", "smtp.home.example:465", "--pop3", "pop.home.example:110",
             "--password-command", "printf 'from-command\\nignored'")  # fmt: skip
    assert stat.S_IMODE(mail.config.stat().st_mode) == 0o600
    listed = mail.json("account", "list")
    assert listed["work"]["default"] and listed["work"]["user"] == "zoe"
    assert listed["home"]["imap"] == "imap.home.example:993" and listed["home"]["imap_tls"] == "tls"
    assert listed["home"]["smtp_tls"] == "tls" and listed["home"]["pop3_tls"] == "starttls"
    assert "pw" not in mail.config.read_text()
    table = mail.run("account", "list").stdout
    assert "work *" in table and "Zoé Ünal" in table and "$PW_WORK" in table and "command" in table
    mail.run("account", "remove", "work")
    assert set(mail.json("account", "list")) == {"home"}
    # no servers given: RFC 6186 SRV records, then usual names (none exist for .invalid)
    nothing = mail.run("account", "add", "x", "--address", "x@courriel-test.invalid", check=False)
    assert nothing.returncode == 1 and "no mail servers found for courriel-test.invalid" in nothing.stderr
    assert set(mail.json("account", "list")) == {"home"}
    # without --config: $XDG_CONFIG_HOME/courriel/accounts.toml
    xdg = tmp_path / "xdg"
    cmd = Mail(Path("unused"))
    proc = subprocess_mail(cmd, ["account", "add", "x", "--address", "x@example.org", "--imap", "h:993"], xdg)
    assert proc.returncode == 0, proc.stderr
    assert (xdg / "courriel" / "accounts.toml").is_file()
    assert stat.S_IMODE((xdg / "courriel" / "accounts.toml").stat().st_mode) == 0o600


def subprocess_mail(m: Mail, args: list[str], xdg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "courriel", "mail", *args], capture_output=True, text=True,
                          env={**m.env, "XDG_CONFIG_HOME": str(xdg)}, timeout=60)  # fmt: skip
