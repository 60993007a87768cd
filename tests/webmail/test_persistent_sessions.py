"""Webmail sessions kept in the store, end to end: Chromium stays logged in across a restart
of `courriel serve` (and the message's capability URLs keep working), the stored row holds a
hash of the cookie and never the cookie itself, logout / `courriel user passwd` / expiry
end a session (a replayed cookie gets the login page), forged cookies are refused, and two
nodes on one PostgreSQL share the sessions."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.harness import CourrielServer
from tests.outbound.conftest import wait_for
from tests.webmail.browser import log_in
from tests.webmail.helpers import base_url, csrf_of, deliver, login, login_token

USERS = {"alice@example.test": "alice-pw", "bob@example.test": "bob-pw", "carol@example.test": "carol-pw"}
COOKIE = "courriel_webmail"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    srv = CourrielServer(tmp_path_factory.mktemp("websess"), users=USERS, only=("smtp", "http"))
    srv.start()
    yield srv
    srv.stop()


def with_attachment(subject: str, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Someone <someone@remote.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@remote.test>"
    msg.set_content("see the attachment")
    msg.add_attachment(b"PK\x03\x04 not really a zip", maintype="application", subtype="zip", filename="notes.zip")
    return msg.as_bytes().replace(b"\n", b"\r\n")


def rows(srv: CourrielServer) -> list[tuple[Any, ...]]:
    """Every column of every stored webmail session (SQLite, or the test's PostgreSQL)."""
    sql = "SELECT id, token_hash, user_id, secret, created, last_seen, expires, client_ip, user_agent FROM web_sessions"
    if srv.pg_dsn:
        import psycopg

        with psycopg.connect(srv.pg_dsn) as pg:
            return [tuple(r) for r in pg.execute(sql).fetchall()]
    conn = sqlite3.connect(srv.data / "courriel.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def expire_all(srv: CourrielServer) -> None:
    sql = "UPDATE web_sessions SET expires = 1"
    if srv.pg_dsn:
        import psycopg

        with psycopg.connect(srv.pg_dsn) as pg:
            pg.execute(sql)
        return
    conn = sqlite3.connect(srv.data / "courriel.db", timeout=30)
    try:
        with conn:
            conn.execute(sql)
    finally:
        conn.close()


def refused(url: str, cookie: str) -> bool:
    """The cookie gets the login page (a GET of the mail redirects there)."""
    r = httpx.get(url + "/mail/", cookies={COOKIE: cookie}, timeout=30)
    return r.status_code == 303 and r.headers["location"].startswith("/login")


def test_browser_stays_logged_in_across_a_restart(server: CourrielServer, chrome: Browser) -> None:
    alice = "alice@example.test"
    deliver(server, alice, with_attachment("before the restart", alice))
    context = chrome.new_context()
    try:
        page = context.new_page()
        log_in(page, server, alice, USERS[alice])
        page.click("text=before the restart")
        page.wait_for_url(re.compile(r".*/mail/box/\d+/\d+$"))
        message_url = page.url
        attachment = page.get_attribute('a[download]:has-text("notes.zip")', "href")
        assert attachment and "?k=" in attachment
        cookie = next(c["value"] for c in context.cookies() if c["name"] == COOKIE)

        # What the store keeps: the SHA-256 of the cookie, never the cookie.
        stored = rows(server)
        assert len(stored) == 1
        assert bytes(stored[0][1]) == hashlib.sha256(cookie.encode()).digest()
        assert all(cookie not in str(v) for v in stored[0])
        assert stored[0][7] == "127.0.0.1" and "Chrome" in stored[0][8]
        if not server.pg_dsn:
            for path in server.data.glob("courriel.db*"):
                assert cookie.encode() not in path.read_bytes(), path

        server.stop()
        server.start()
        page.goto(message_url)
        assert page.url == message_url  # no detour by the login page
        assert page.inner_text("h1.subject") == "before the restart"
        # The capability signed before the restart still opens the part (no cookie needed).
        r = httpx.get(base_url(server) + attachment, timeout=30)
        assert r.status_code == 200 and r.content.startswith(b"PK\x03\x04")

        page.click("text=Log out")
        page.wait_for_url("**/login")
        assert refused(base_url(server), cookie)  # logout revoked it: replaying gets the login page
        assert httpx.get(base_url(server) + attachment, timeout=30).status_code == 403  # and its capabilities
        assert rows(server) == []
    finally:
        context.close()


def test_password_change_ends_the_sessions(server: CourrielServer) -> None:
    bob = "bob@example.test"
    first, second = login(server, bob, USERS[bob]), login(server, bob, USERS[bob])
    cookies = [c.cookies[COOKIE] for c in (first, second)]
    assert not any(refused(base_url(server), c) for c in cookies)
    assert len({bytes(r[1]) for r in rows(server)} & {hashlib.sha256(c.encode()).digest() for c in cookies}) == 2
    server.cli("user", "passwd", bob, "--password-stdin", stdin="bob-new-pw\n")  # another process
    for cookie in cookies:  # the server's cache asks the store again within seconds
        wait_for(partial(refused, base_url(server), cookie), what="the session to end")
    hashes = {hashlib.sha256(c.encode()).digest() for c in cookies}
    assert not [r for r in rows(server) if bytes(r[1]) in hashes]  # gone from the store
    with closing(login(server, bob, "bob-new-pw")) as fresh:
        assert not refused(base_url(server), fresh.cookies[COOKIE])
    first.close()
    second.close()


def test_expired_forged_and_oversized_cookies_are_refused(server: CourrielServer) -> None:
    carol = "carol@example.test"
    with closing(login(server, carol, USERS[carol])) as client:
        cookie = client.cookies[COOKIE]
    assert not refused(base_url(server), cookie)
    expire_all(server)  # past the maximum lifetime, as the store says
    wait_for(lambda: refused(base_url(server), cookie), what="the expired session to be refused")
    url = base_url(server)
    for forged in ("forged", "A" * 43, cookie[:-1] + ("A" if cookie[-1] != "A" else "B"), "x" * 5000):
        assert refused(url, forged), forged
        r = httpx.get(url + "/mail/folders", cookies={COOKIE: forged}, headers={"X-Requested-With": "fetch"})
        assert r.status_code == 401 and r.json() == {"error": "Not logged in"}
        r = httpx.post(url + "/mail/action", cookies={COOKIE: forged}, data={"op": "read"})
        assert r.status_code == 401


def test_two_nodes_on_one_postgresql_share_the_sessions(tmp_path: Path) -> None:
    from tests.nodes.cluster import make_nodes
    from tests.pg import cluster

    try:
        pg = cluster()
    except FileNotFoundError as exc:
        from tests.tools import unavailable

        unavailable(str(exc))
    dsn = pg.fresh_dsn("websess")
    with ThreadPoolExecutor(1) as pool:  # make_nodes runs asyncio: not on Playwright's thread
        nodes = pool.submit(make_nodes, tmp_path, dsn, 2, None, None, "example.test", ("http",)).result()
    try:
        a, b = nodes
        on_a = login(a, "alice@example.test", "alice-pw")
        cookie = on_a.cookies[COOKIE]
        on_b = httpx.Client(base_url=base_url(b), cookies={COOKIE: cookie}, timeout=30)
        r = on_b.get("/mail/")
        assert r.status_code == 303 and r.headers["location"].startswith("/mail/box/"), r.headers
        page = on_b.get(r.headers["location"])
        assert page.status_code == 200 and csrf_of(page.text) == csrf_of(on_a.get(r.headers["location"]).text)
        assert on_b.post("/logout", data={"csrf": csrf_of(page.text)}).status_code == 303  # logout on B
        wait_for(lambda: refused(base_url(a), cookie), what="node A to see the logout of node B")
        on_a.close()
        on_b.close()
    finally:
        for node in nodes:
            node.stop()
        pg.drop(dsn)



def login_as(srv: CourrielServer, user: str, agent: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url(srv), timeout=30, headers={"user-agent": agent})
    r = client.post("/login", data={"username": user, "password": USERS[user], "login_token": login_token(client)})
    assert r.status_code == 303, r.text
    return client


def test_sessions_page_lists_devices_and_ends_them(server: CourrielServer) -> None:
    alice, carol = "alice@example.test", "carol@example.test"
    url = base_url(server)
    me, phone, tablet = (login_as(server, alice, a) for a in ("Firefox/128", "Phone <b>x</b>", "Tablet/1"))
    with closing(login_as(server, carol, "Carol's")) as other, closing(me), closing(phone), closing(tablet):
        page = me.get("/mail/sessions")
        assert page.status_code == 200
        listed = dict(re.findall(r'data-session="(\d+)">\s*<td>([^<]*)</td><td>127.0.0.1</td>', page.text))
        assert sorted(listed.values()) == sorted(["Firefox/128", "Phone &lt;b&gt;x&lt;/b&gt;", "Tablet/1"])
        ids = {agent: int(sid) for sid, agent in listed.items()}
        current = re.search(r'<tr class="current" data-session="(\d+)"', page.text)
        assert current and int(current.group(1)) == ids["Firefox/128"] and "this session" in page.text
        (carol_id,) = re.findall(r'data-session="(\d+)"', other.get("/mail/sessions").text)
        csrf = csrf_of(page.text)

        def end(**form: object) -> httpx.Response:
            return me.post("/mail/sessions/end", data={"csrf": csrf, **{k: str(v) for k, v in form.items()}})

        assert end(id=carol_id).status_code == 404  # another user's session: not from here
        assert not refused(url, other.cookies[COOKIE])
        assert end(id=ids["Firefox/128"]).status_code == 400  # this one: Log out is for that
        assert end(id="x" * 30).status_code == 400
        assert me.post("/mail/sessions/end", data={"id": ids["Tablet/1"]}).status_code == 403  # no CSRF token
        r = end(id=ids["Tablet/1"])
        assert r.status_code == 303 and "notice=Session+ended" in r.headers["location"]
        assert refused(url, tablet.cookies[COOKIE]) and not refused(url, phone.cookies[COOKIE])
        r = end(others=1)
        assert r.status_code == 303 and "Ended+1+other+session" in r.headers["location"]
        assert refused(url, phone.cookies[COOKIE])
        assert not refused(url, me.cookies[COOKIE]) and not refused(url, other.cookies[COOKIE])
        assert me.get("/mail/sessions").text.count('data-session="') == 1


def test_a_capability_opens_only_its_own_users_messages(server: CourrielServer) -> None:
    """Even signed with the right key, a capability for another user's message is refused."""
    import hmac

    bob, carol = "bob@example.test", "carol@example.test"
    server.cli("user", "passwd", bob, "--password-stdin", stdin=USERS[bob] + "\n")
    deliver(server, bob, with_attachment("for bob only", bob))
    with closing(login(server, bob, USERS[bob])) as b, closing(login(server, carol, USERS[carol])) as c:
        box = b.get("/mail/").headers["location"]
        m = re.search(r'class="open" href="(/mail/box/(\d+)/(\d+))"(?:(?!href=).)*?for bob only', b.get(box).text, re.S)
        assert m
        mailbox_id, uid = m.group(2), m.group(3)
        assert b.get(m.group(1) + "/body?k=x").status_code == 200  # bob's cookie: his message
        sid, secret = next((str(r[0]), str(r[3])) for r in rows(server)
                           if bytes(r[1]) == hashlib.sha256(c.cookies[COOKIE].encode()).digest())  # fmt: skip
        key = hmac.new(secret.encode(), b"courriel webmail frame capability", hashlib.sha256).digest()
        expires = "9999999999"
        mac = hmac.new(key, f"{sid}:{mailbox_id}:{uid}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]
        url = base_url(server) + f"/mail/box/{mailbox_id}/{uid}/body?k={sid}.{expires}.{mac}"
        assert httpx.get(url).status_code == 403  # carol's session, bob's message
        assert c.get(m.group(1) + "/part/2?download=1").status_code == 403
        assert c.get(m.group(1) + "/raw").status_code == 404
