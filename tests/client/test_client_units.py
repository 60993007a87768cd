"""The client's pure parts, with tables: server specs, the account file, password sources,
RFC 6186 discovery, addresses, drafts, replies, forwards, editor templates, file names,
UIDL lines, flags, listing headers and error messages."""

from __future__ import annotations

import smtplib
import socket
import ssl
import stat
from pathlib import Path

import pytest

from courriel.client import accounts as acc
from courriel.client.accounts import Account, AccountFile, Server, parse_server
from courriel.client.autoconfig import DnsUnavailable, best_srv, discover
from courriel.client.compose import Draft, addresses, forward_draft, reply_draft
from courriel.client.editor import parse_template, template
from courriel.client.errors import ClientError, describe
from courriel.client.fetch import parse_list_lines, parse_uidl_lines
from courriel.client.imap import flag_name, summary_from_headers
from courriel.client.message import safe_filename, view
from courriel.client.render import flag_letters, human_size
from tests.client.helpers import parse_strict


@pytest.mark.parametrize(("service", "value", "tls", "expected"), [
    ("imap", "mail.example.org", None, Server("mail.example.org", 993, "tls")),
    ("imap", "mail.example.org", "starttls", Server("mail.example.org", 143, "starttls")),
    ("imap", "mail.example.org:143", None, Server("mail.example.org", 143, "starttls")),
    ("smtp", "smtp.example.org:465", None, Server("smtp.example.org", 465, "tls")),
    ("smtp", "smtp.example.org", "starttls", Server("smtp.example.org", 587, "starttls")),
    ("smtp", "smtp.example.org:2587", "STARTTLS", Server("smtp.example.org", 2587, "starttls")),
    ("pop3", "[::1]:1995", "tls", Server("::1", 1995, "tls")),
    ("pop3", "pop.example.org", "none", Server("pop.example.org", 110, "none")),
])  # fmt: skip
def test_parse_server(service: str, value: str, tls: str | None, expected: Server) -> None:
    assert parse_server(service, value, tls) == expected


@pytest.mark.parametrize(("value", "tls", "message"), [
    ("host:0", None, "bad port"), ("host:99999", None, "bad port"), ("host:x", None, "bad port"),
    (":993", None, "no host"), ("host", "ssl", "TLS mode must be"),
])  # fmt: skip
def test_parse_server_rejects(value: str, tls: str | None, message: str) -> None:
    with pytest.raises(ClientError, match=message):
        parse_server("imap", value, tls)


def test_account_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "accounts.toml"
    book = AccountFile(path)
    weird = Account(name="perso ü \"q\"", address='"Zoé \\"Z\\" Ünal" <zoe@example.org>', user="zoe",
                    imap=Server("::1", 993, "tls"), smtp=Server("smtp.example.org", 587, "starttls"),
                    password_command="pass show 'mail/zoé'", charset="iso-8859-15")  # fmt: skip
    book.accounts[weird.name] = weird
    book.accounts["plain"] = Account(name="plain", address="a@b.example", pop3=Server("pop.b.example", 995, "tls"))
    book.default = "plain"
    book.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = AccountFile.load(path)
    assert again.default == "plain" and again.get(None).name == "plain"
    got = again.get(weird.name)
    assert (got.address, got.user, got.imap, got.smtp, got.pop3, got.password_command, got.charset) == (
        weird.address, "zoe", weird.imap, weird.smtp, None, weird.password_command, "iso-8859-15")  # fmt: skip
    assert got.email == "zoe@example.org" and got.login == "zoe"
    with pytest.raises(ClientError, match="no account 'x'"):
        again.get("x")


@pytest.mark.parametrize(("text", "message"), [
    ('[accounts.a]\naddress = "a@b"\npassword = "secret"\n', "unknown key"),
    ("[accounts.a]\nuser = 'x'\n", "address is required"),
    ('[accounts.a]\naddress = "a@b"\nimap = "h:0"\n', "bad port"),
    ("[accounts\n", "accounts.toml"),
    ('accounts = "x"\n', "tables"),
])  # fmt: skip
def test_account_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    with pytest.raises(ClientError, match=message):
        AccountFile.load(path)


def test_password_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_PW", "from env")
    assert Account("a", "a@b", password_env="MY_PW").password() == "from env"
    cmd = Account("a", "a@b", password_command="printf 'first line\\nsecond'")
    assert cmd.password() == "first line"
    monkeypatch.delenv("MY_PW")
    assert Account("a", "a@b", password_env="MY_PW", password_command="echo fallback").password() == "fallback"
    with pytest.raises(ClientError, match="MY_PW is not set"):
        Account("a", "a@b", password_env="MY_PW").password()
    with pytest.raises(ClientError, match="exited with status 3"):
        Account("a", "a@b", password_command="exit 3").password()
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ClientError, match="no password"):
        Account("a", "a@b").password()


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COURRIEL_MAIL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert acc.config_path(None) == tmp_path / "xdg" / "courriel" / "accounts.toml"
    monkeypatch.setenv("COURRIEL_MAIL_CONFIG", str(tmp_path / "env.toml"))
    assert acc.config_path(None) == tmp_path / "env.toml"
    assert acc.config_path(str(tmp_path / "flag.toml")) == tmp_path / "flag.toml"
    assert acc.state_dir(tmp_path / "flag.toml") == tmp_path / "flag-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert acc.state_dir(tmp_path / "xdg" / "courriel" / "accounts.toml") == tmp_path / "state" / "courriel"


def test_discover_srv_then_guesses() -> None:
    records = {
        "_submissions._tcp.example.org": [(10, 0, 465, "smtp2.example.org."), (5, 10, 465, "smtp.example.org.")],
        "_imap._tcp.example.org": [(0, 0, 143, "imap.example.org.")],
        "_imaps._tcp.example.org": [(0, 0, 0, ".")],  # RFC 6186 §4: not offered
    }
    found = discover("example.org", srv=lambda n: records.get(n, []), exists=lambda h: h == "mail.example.org")
    assert found == {"smtp": Server("smtp.example.org", 465, "tls"), "imap": Server("imap.example.org", 143, "starttls"),
                     "pop3": Server("mail.example.org", 995, "tls")}  # fmt: skip
    assert best_srv([]) is None and best_srv([(0, 0, 0, ".")]) is None


def test_discover_stops_when_dns_does_not_answer() -> None:
    asked: list[str] = []

    def srv(name: str) -> list[tuple[int, int, int, str]]:
        asked.append(name)
        if name.startswith("_imaps."):
            raise DnsUnavailable("timeout")
        return [(0, 0, 465, "smtp.example.org")] if name.startswith("_submissions.") else []

    assert discover("example.org", srv=srv, exists=lambda h: True) == {"smtp": Server("smtp.example.org", 465, "tls")}
    assert asked[-1].startswith("_imaps.")


@pytest.mark.parametrize(("values", "expected"), [
    (["a@b.example"], [("", "a@b.example")]),
    (["Zoé <z@b.example>, y@b.example"], [("Zoé", "z@b.example"), ("", "y@b.example")]),
    (['"Doe, J." <j@b.example>'], [("Doe, J.", "j@b.example")]),
    (["", " "], []),
])  # fmt: skip
def test_addresses(values: list[str], expected: list[tuple[str, str]]) -> None:
    assert addresses(values) == expected


@pytest.mark.parametrize("bad", ["not an address", "@b.example", "a@", "plain"])
def test_addresses_rejects(bad: str) -> None:
    with pytest.raises(ClientError, match="not an e-mail address"):
        addresses([bad])


def _original(**headers: str) -> bytes:
    base = {"From": "Bob <bob@b.example>", "To": "me@a.example, Carol <carol@c.example>", "Cc": "dan@d.example",
            "Subject": "=?utf-8?b?UsOpdW5pb24=?=", "Message-ID": "<m1@b.example>", "References": "<m0@b.example>",
            "Date": "Sun, 29 Nov 2026 10:00:00 +0100"}  # fmt: skip
    base.update(headers)
    head = "".join(f"{k}: {v}\r\n" for k, v in base.items() if v)
    return (head + "\r\nLigne un\r\n\r\nLigne deux\r\n").encode()


def test_reply_and_reply_all() -> None:
    me = Account("me", "Me <ME@a.example>")
    one = reply_draft(me, view(_original()), reply_all=False)
    assert one.to == [("Bob", "bob@b.example")] and one.cc == [] and one.subject == "Re: Réunion"
    assert one.in_reply_to == "m1@b.example" and one.references == ["m0@b.example", "m1@b.example"]
    assert "Bob wrote:\n> Ligne un\n>\n> Ligne deux\n" in one.text
    everyone = reply_draft(me, view(_original(**{"Reply-To": "list@l.example"})), reply_all=True)
    assert everyone.to == [("", "list@l.example")]
    assert [a for _n, a in everyone.cc] == ["carol@c.example", "dan@d.example"]
    again = reply_draft(me, view(_original(Subject="RE: Réunion")), reply_all=False)
    assert again.subject == "RE: Réunion"


def test_forward_inline_and_as_attachment() -> None:
    me = Account("me", "me@a.example")
    raw = _original()
    inline = forward_draft(me, view(raw), as_attachment=False)
    assert inline.subject == "Fwd: Réunion" and "From: Bob <bob@b.example>" in inline.text
    assert inline.text.endswith("Ligne un\n\nLigne deux\n")
    wrapped = forward_draft(me, view(raw), as_attachment=True)
    [att] = wrapped.attachments
    assert att.content_type == "message/rfc822" and att.data == raw and att.filename == "Réunion.eml"


def test_draft_build_hides_bcc_and_parses_cleanly() -> None:
    d = Draft(from_=[("Zoé", "z@a.example")], to=[("Борис", "b@b.example")], bcc=[("", "h@h.example")],
              cc=[("", "B@b.example")], subject=" ".join(["日本語"] * 30), text="Ligne\n")  # fmt: skip
    assert d.recipients() == ["b@b.example", "h@h.example"]
    assert Draft(from_=[], to=[("", "a@bücher.example"), ("", "A@xn--bcher-kva.example")]).recipients() == [
        "a@xn--bcher-kva.example"]  # fmt: skip
    with pytest.raises(ClientError, match="SMTPUTF8"):
        Draft(from_=[], to=[("", "zoë@b.example")]).recipients()
    wire, kept = d.build(keep_bcc=False), d.build(keep_bcc=True)
    assert b"Bcc:" not in wire and b"Bcc: h@h.example" in kept and wire.isascii()
    msg = parse_strict(wire)
    assert msg["Subject"] == " ".join(["日本語"] * 30) and msg["To"] == "Борис <b@b.example>"


def test_editor_template_round_trip() -> None:
    d = Draft(from_=[("Zoé", "z@a.example")], to=[("Doe, J.", "j@b.example")], subject="Sujet", text="Corps\n")
    text = template(d)
    assert text.startswith('From: Zoé <z@a.example>\nTo: "Doe, J." <j@b.example>\n')
    edited = text.replace("Cc: \n", "Cc: a@c.example,\n  b@c.example\n").replace("Subject: Sujet", "Subject: Autre")
    edited = edited.replace("\n\n", "\nAttach: /tmp/x.pdf\nAttach: /tmp/y.pdf\n\n", 1)
    out, attach = parse_template(edited, Draft(from_=[]))
    assert out.to == [("Doe, J.", "j@b.example")] and [a for _n, a in out.cc] == ["a@c.example", "b@c.example"]
    assert out.subject == "Autre" and out.text == "Corps\n" and attach == ["/tmp/x.pdf", "/tmp/y.pdf"]
    with pytest.raises(ClientError, match="unknown header 'x-mailer'"):
        parse_template("From: a@b.example\nX-Mailer: x\n\nbody", Draft(from_=[]))
    with pytest.raises(ClientError, match="without a colon"):
        parse_template("From a@b.example\n\nbody", Draft(from_=[]))
    with pytest.raises(ClientError, match="no From"):
        parse_template("From: \nTo: a@b.example\n\nbody", Draft(from_=[]))


@pytest.mark.parametrize(("name", "expected"), [
    ("rapport.pdf", "rapport.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\x\\éval.doc", "éval.doc"),
    (".bashrc", "bashrc"),
    ("a\x00b\nc.txt", "a_b_c.txt"),
    ("", "attachment-3.pdf"),
    ("..", "attachment-3.pdf"),
    ('דו"ח.txt', 'דו"ח.txt'),
    ("日" * 100 + ".pdf", "日" * 65 + ".pdf"),
])  # fmt: skip
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name, 3, "application/pdf") == expected


def test_parse_uidl_lines() -> None:
    assert parse_uidl_lines([b"1 whqtswO00WBw418f9t5JxYwZ", b"2 QhdPYR:00WBw1Ph7x7"]) == {
        1: "whqtswO00WBw418f9t5JxYwZ", 2: "QhdPYR:00WBw1Ph7x7"}  # fmt: skip
    for bad in (b"1", b"x abc", b"1 " + b"a" * 71, b"1 a\x01b", b"1 a b"):
        with pytest.raises(ClientError, match="malformed UIDL"):
            parse_uidl_lines([bad])


def test_parse_list_lines() -> None:
    assert parse_list_lines([b"1 120", b"2 4096 extra"]) == {1: 120, 2: 4096}
    for bad in (b"1", b"x 12", b"1 -5", b""):
        with pytest.raises(ClientError, match="malformed LIST"):
            parse_list_lines([bad])


@pytest.mark.parametrize(("word", "expected"), [
    ("seen", "\\Seen"), ("\\Flagged", "\\Flagged"), ("FORWARDED", "$Forwarded"), ("$Work", "$Work"),
    ("Deleted", "\\Deleted"),
])  # fmt: skip
def test_flag_name(word: str, expected: str) -> None:
    assert flag_name(word) == expected


@pytest.mark.parametrize("bad", ["\\Bogus", "two words", "a(b", "", "émoji"])
def test_flag_name_rejects(bad: str) -> None:
    with pytest.raises(ClientError):
        flag_name(bad)


def test_summary_from_headers() -> None:
    raw = (b"Date: Sun, 29 Nov 2026 10:00:00 +0100\r\nFrom: =?utf-8?b?0JfQvtGP?= <z@r.example>\r\n"
           b"Subject: =?iso-8859-15?q?Caf=E9_=A4?=\r\n =?utf-8?b?IOaXpeacrA==?=\r\nTo: a@b.example\r\n\r\n")  # fmt: skip
    s = summary_from_headers(7, raw, [b"\\Seen", b"$Work"], 1234)
    assert (s.uid, s.sender, s.subject, s.to, s.flags, s.size) == (
        7, "Зоя", "Café € 日本", "a@b.example", ("\\Seen", "$Work"), 1234)  # fmt: skip
    assert s.date is not None and s.date.utcoffset() is not None and s.date.hour == 10


def test_flag_letters_and_sizes() -> None:
    assert flag_letters([]) == "N"
    assert flag_letters(["\\Seen", "\\Answered", "\\Flagged", "$Forwarded"]) == "r!f"
    assert [human_size(n) for n in (0, 999, 1536, 10 * 1024, 5 * 1024 * 1024)] == ["0B", "999B", "1.5K", "10K", "5.0M"]


@pytest.mark.parametrize(("exc", "expected"), [
    (ConnectionRefusedError(111, "refused"), "cannot reach IMAP h:1: connection refused"),
    (socket.gaierror(-2, "Name or service not known"), "cannot reach IMAP h:1: unknown host (Name or service not known)"),
    (TimeoutError(), "cannot reach IMAP h:1: timed out"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "TLS failure with IMAP h:1"),
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 no"), "wrong credentials for IMAP h:1: 535 5.7.8 no"),
    (smtplib.SMTPRecipientsRefused({"x@y": (550, b"5.1.1 unknown")}), "IMAP h:1 refused the recipients: x@y: 550 5.1.1 unknown"),
    (EOFError(), "IMAP h:1 closed the connection"),
])  # fmt: skip
def test_describe_errors(exc: BaseException, expected: str) -> None:
    message = str(describe(exc, "IMAP", "h", 1))
    assert message.startswith(expected) and "\n" not in message
