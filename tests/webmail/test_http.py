"""The webmail over plain HTTP (httpx): login, CSRF, sessions, security headers, paging,
parts, actions, the live event stream. The browser tests are in test_browser.py."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import pytest

import courriel.webmail
from tests.harness import CourrielServer
from tests.webmail.helpers import (
    append_many,
    base_url,
    csrf_of,
    deliver,
    login,
    login_token,
    text_message,
)

CSP_WANTED = ("default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'",
              "base-uri 'none'", "form-action 'self'")  # fmt: skip


def inbox_id(client: httpx.Client) -> int:
    r = client.get("/mail/")
    assert r.status_code == 303
    m = re.fullmatch(r"/mail/box/(\d+)", r.headers["location"])
    assert m
    return int(m.group(1))


def test_login_page_headers(srv: CourrielServer) -> None:
    r = httpx.get(base_url(srv) + "/login")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    for directive in CSP_WANTED:
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text


def test_templates_have_no_inline_script_handler_or_style() -> None:
    """The CSP forbids them; the browser tests would see the violations, this names the file."""
    templates = Path(courriel.webmail.__file__).parent / "templates"
    for path in templates.glob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", text), path
        assert not re.search(r"<[^>]+\sstyle\s*=", text), path
        assert "javascript:" not in text, path


def test_static_files_and_root(srv: CourrielServer) -> None:
    r = httpx.get(base_url(srv) + "/static/app.js")
    assert r.status_code == 200 and "EventSource" in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(base_url(srv) + "/").headers["location"] == "/login"
    assert httpx.get(base_url(srv) + "/static/../courriel.toml").status_code == 404


def test_mail_needs_a_session(srv: CourrielServer) -> None:
    r = httpx.get(base_url(srv) + "/mail/box/1")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = httpx.post(base_url(srv) + "/mail/action", data={"op": "read"})
    assert r.status_code == 401


def test_login_needs_the_form_token(srv: CourrielServer) -> None:
    with httpx.Client(base_url=base_url(srv)) as c:
        data = {"username": "alice@example.test", "password": "alice-pw", "next": "/mail/"}
        assert c.post("/login", data=data).status_code == 403  # no token, no cookie
        token = login_token(c)
        assert c.post("/login", data={**data, "login_token": token + "x"}).status_code == 403
        token = login_token(c)  # each answer sets a new form token
        r = c.post("/login", data={**data, "login_token": token}, headers={"Origin": "http://evil.test"})
        assert r.status_code == 403
        token = login_token(c)
        r = c.post("/login", data={**data, "login_token": token})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "courriel_webmail=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain http on loopback


def test_wrong_password_is_refused(srv: CourrielServer) -> None:
    with httpx.Client(base_url=base_url(srv)) as c:
        token = login_token(c)
        r = c.post("/login", data={"username": "alice@example.test", "password": "nope", "login_token": token})
        assert r.status_code == 401 and "Wrong user name or password" in r.text
        assert "courriel_webmail" not in r.headers.get("set-cookie", "")
    login(srv).close()  # a success clears the address's failures


def test_csrf_on_every_post(srv: CourrielServer) -> None:
    c = login(srv)
    mailbox = inbox_id(c)
    deliver(srv, "alice@example.test", text_message("csrf target", "body"))
    page = c.get(f"/mail/box/{mailbox}")
    uid = re.search(r'data-uid="(\d+)"', page.text)
    assert uid
    data = {"mailbox": str(mailbox), "uid": uid.group(1), "op": "flag"}
    assert c.post("/mail/action", data=data).status_code == 403
    assert c.post("/mail/action", data={**data, "csrf": "wrong"}).status_code == 403
    token = csrf_of(page.text)
    r = c.post("/mail/action", data={**data, "csrf": token}, headers={"Origin": "http://evil.test"})
    assert r.status_code == 403
    assert c.post("/mail/action", data={**data, "csrf": token}).status_code == 303
    r = c.post("/mail/action", data={**data, "op": "unflag"}, headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"})
    assert r.status_code == 200 and r.json()["ok"]
    assert c.post("/mail/send", data={"to": "bob@example.test", "body": "x"}).status_code == 403
    assert c.post("/logout").status_code == 403
    c.close()


def test_logout_ends_the_session(srv: CourrielServer) -> None:
    c = login(srv)
    page = c.get("/mail/", follow_redirects=True)
    cookie = c.cookies["courriel_webmail"]
    r = c.post("/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = httpx.get(base_url(srv) + "/mail/", cookies={"courriel_webmail": cookie})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    c.close()


def test_other_users_folders_and_messages_are_out_of_reach(srv: CourrielServer) -> None:
    alice, bob = login(srv), login(srv, "bob@example.test", "bob-pw")
    deliver(srv, "bob@example.test", text_message("for bob only", "secret"))
    bob_inbox = inbox_id(bob)
    uid = re.search(r'data-uid="(\d+)"', bob.get(f"/mail/box/{bob_inbox}").text)
    assert uid
    assert alice.get(f"/mail/box/{bob_inbox}").status_code == 404
    assert alice.get(f"/mail/box/{bob_inbox}/{uid.group(1)}").status_code == 404
    assert alice.get(f"/mail/box/{bob_inbox}/{uid.group(1)}/part/1").status_code == 403
    assert alice.get(f"/mail/box/{bob_inbox}/{uid.group(1)}/body?k=1.abc").status_code == 403
    alice.close()
    bob.close()


def test_attachment_download_headers_and_capability(srv: CourrielServer) -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "x@remote.test", "alice@example.test", "with a page attached"
    msg.set_content("see attached")
    msg.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html", filename="évil.html")
    deliver(srv, "alice@example.test", msg.as_bytes().replace(b"\n", b"\r\n"))
    c = login(srv)
    mailbox = inbox_id(c)
    listing = c.get(f"/mail/box/{mailbox}?q=page+attached&in=subject")
    uid = re.search(r'data-uid="(\d+)"', listing.text)
    assert uid
    page = c.get(f"/mail/box/{mailbox}/{uid.group(1)}")
    link = re.search(r'href="(/mail/box/\d+/\d+/part/2\?k=[^"]+)"', page.text)
    assert link, page.text
    url = link.group(1).replace("&amp;", "&")
    r = httpx.get(base_url(srv) + url)  # the capability alone, no cookie
    assert r.status_code == 200 and r.content == b"<script>alert(1)</script>"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%C3%A9vil.html" in r.headers["content-disposition"]
    assert r.headers["content-type"].startswith("application/octet-stream")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    other = re.sub(r"/(\d+)/part/", lambda m: f"/{int(m.group(1)) + 1}/part/", url)
    assert httpx.get(base_url(srv) + other).status_code == 403  # the capability names one message
    c.close()


def test_list_pages_server_side(srv: CourrielServer) -> None:
    c = login(srv, "bob@example.test", "bob-pw")
    items = [text_message(f"bulk message {i:04d}", f"body {i}", msgid=f"<bulk{i}@remote.test>") for i in range(2000)]
    append_many(srv, "bob@example.test", "Archive", items)
    page = c.get("/mail/", follow_redirects=True)
    archive = re.search(r'href="/mail/box/(\d+)" data-mailbox="\d+">\s*<span class="name">Archive', page.text)
    assert archive
    first = c.get(f"/mail/box/{archive.group(1)}")
    assert "page 1 of 40" in first.text and "2000 messages" in first.text
    assert first.text.count('class="msg') == 50
    assert len(first.content) < 120_000  # one page, whatever the folder's size
    last = c.get(f"/mail/box/{archive.group(1)}?page=40")
    assert "page 40 of 40" in last.text and last.text.count('class="msg') == 50
    beyond = c.get(f"/mail/box/{archive.group(1)}?page=999")
    assert "page 40 of 40" in beyond.text
    found = c.get(f"/mail/box/{archive.group(1)}?q=message+1234&in=subject")
    assert "1 message" in found.text and "bulk message 1234" in found.text
    c.close()


def test_live_events_on_delivery(srv: CourrielServer) -> None:
    c = login(srv)
    mailbox = inbox_id(c)
    seen: list[str] = []
    with c.stream("GET", "/mail/events", timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines).startswith("retry:")
        threading.Thread(target=deliver, args=(srv, "alice@example.test", text_message("live one", "x"))).start()
        for line in lines:
            seen.append(line)
            if line.startswith("data:"):
                break
    assert "event: change" in seen
    assert f'"mailboxes": [{mailbox}]' in seen[-1]
    c.close()


def test_send_and_sent_copy(srv: CourrielServer) -> None:
    c = login(srv)
    page = c.get("/mail/compose")
    token = csrf_of(page.text)
    r = c.post("/mail/send", data={"csrf": token, "to": "bob@example.test", "bcc": "alice@example.test",
                                   "subject": "plain send", "body": "hello bob"},
               files={"files": ("notes.txt", b"attached notes", "text/plain")})  # fmt: skip
    assert r.status_code == 303, r.text
    bob = login(srv, "bob@example.test", "bob-pw")
    listing = bob.get(f"/mail/box/{inbox_id(bob)}?q=plain+send&in=subject")
    assert "1 message" in listing.text
    alice_home = c.get("/mail/", follow_redirects=True).text
    sent = re.search(r'href="/mail/box/(\d+)" data-mailbox="\d+">\s*<span class="name">Sent', alice_home)
    assert sent
    copy = c.get(f"/mail/box/{sent.group(1)}?q=plain+send&in=subject")
    assert "1 message" in copy.text and "📎" in copy.text
    # Sender rules are submit()'s: an unknown local recipient is refused with a reason.
    r = c.post("/mail/send", data={"csrf": token, "to": "nobody@example.test", "subject": "x", "body": "x"})
    assert r.status_code == 400 and "User unknown" in r.text and "nobody@example.test" in r.text
    r = c.post("/mail/send", data={"csrf": token, "to": "", "subject": "x", "body": "x"})
    assert r.status_code == 400 and "recipient" in r.text
    bob.close()
    c.close()


def test_login_rate_limit(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server of its own: the lockout holds 127.0.0.1 for 15 minutes."""
    server = CourrielServer(tmp_path_factory.mktemp("webmail-limit"), users={"alice@example.test": "alice-pw"},
                            only=("http",), env={"COURRIEL_LIMITS_MAX_AUTH_FAILURES": "2"})  # fmt: skip
    with server, httpx.Client(base_url=base_url(server), timeout=60) as c:
        codes = []
        for _ in range(3):
            token = login_token(c)
            r = c.post("/login", data={"username": "alice@example.test", "password": "bad", "login_token": token})
            codes.append(r.status_code)
        assert codes == [401, 401, 429]
        token = login_token(c)  # locked out: even the right password is not checked
        r = c.post("/login", data={"username": "alice@example.test", "password": "alice-pw", "login_token": token})
        assert r.status_code == 429 and "Too many failed logins" in r.text


BAD_GETS = [
    "/mail/box/99999999999999999999999",
    "/mail/box/1/99999999999999999999999",
    "/mail/box/1/99999999999999999999/part/1",
    "/mail/box/1/1/part/1.x",
    "/mail/box/1/1/part/1.99",
    "/mail/box/1/9999/body",
    "/mail/compose?mode=reply&mbox=999999999999999999999&uid=5",
    "/mail/compose?mode=bogus",
    "/mail/compose?mode=reply&mbox=%C2%B2&uid=1",
]


def test_bad_input_gets_a_clear_4xx(srv: CourrielServer) -> None:
    c = login(srv)
    token = csrf_of(c.get("/mail/", follow_redirects=True).text)
    for url in BAD_GETS:
        r = c.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code)
    for url in ("/mail/box/1?page=-5", "/mail/box/1?page=99999999999999999999999", "/mail/box/1?q=" + "x" * 5000,
                "/mail/folders?current=99999999999999999999999", "/mail/box/1?q=%00%ff"):  # fmt: skip
        assert c.get(url).status_code == 200, url
    for data in ({"op": "move", "mailbox": "1", "uid": "1", "target": "99999999999999999999999"},
                 {"op": "read", "mailbox": "99999999999999999999999", "uid": "1"},
                 {"op": "read", "mailbox": "1", "uid": "9999999999"},
                 {"op": "delete", "mailbox": "1", "uid": "abc"},
                 {"op": "explode", "mailbox": "1", "uid": "1"}):  # fmt: skip
        r = c.post("/mail/action", data={**data, "csrf": token})
        assert r.status_code == 400, data
    r = c.post("/mail/send", data={"csrf": token, "to": "a@@b, <x", "body": "x"})
    assert r.status_code == 400
    r = c.post("/mail/upload", headers={"X-CSRF-Token": token}, data={"x": "y"})
    assert r.status_code == 400
    assert c.get("/mail/", follow_redirects=True).status_code == 200  # the server goes on
    assert not any("Traceback" in line for line in srv.stderr), "\n".join(srv.stderr)
    c.close()


def test_reply_all_and_forward_prefill(srv: CourrielServer) -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["Subject"] = "Carol <carol@remote.test>", "Plans for Thursday"
    msg["To"], msg["Cc"] = "alice@example.test, Bob <bob@example.test>", "dave@remote.test"
    msg["Message-ID"], msg["References"] = "<thu@remote.test>", "<root@remote.test>"
    msg.set_content("Shall we meet?\n> earlier quote\n")
    msg.add_attachment(b"%PDF-1.4 agenda", maintype="application", subtype="pdf", filename="agenda.pdf")
    deliver(srv, "alice@example.test", msg.as_bytes().replace(b"\n", b"\r\n"))
    c = login(srv)
    mailbox = inbox_id(c)
    uid = re.search(r'data-uid="(\d+)"', c.get(f"/mail/box/{mailbox}?q=Thursday&in=subject").text)
    assert uid
    page = c.get(f"/mail/compose?mode=all&mbox={mailbox}&uid={uid.group(1)}").text
    assert 'name="to" id="to" value="Carol &lt;carol@remote.test&gt;"' in page
    assert 'value="Bob &lt;bob@example.test&gt;, dave@remote.test"' in page  # Cc: the others, not alice
    assert 'value="Re: Plans for Thursday"' in page
    assert 'name="in_reply_to" value="thu@remote.test"' in page  # ids as stored; compose adds <>
    assert 'name="references" value="root@remote.test thu@remote.test"' in page
    assert "&gt; Shall we meet?\n&gt;&gt; earlier quote" in page
    forward = c.get(f"/mail/compose?mode=forward&mbox={mailbox}&uid={uid.group(1)}").text
    assert 'value="Fwd: Plans for Thursday"' in forward
    assert "agenda.pdf" in forward and "---------- Forwarded message ----------" in forward
    c.close()
