"""Who may call JMAP: Basic (refused with a wrong password, only over TLS or loopback unless
allowed), bearer tokens from `courriel token add`, and the shared rate limits."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from starlette.requests import HTTPConnection

from courriel.config import build_config
from courriel.jmap.auth import bearer_token, token_hash
from courriel.server import Context
from courriel.web.auth import password_allowed
from tests.harness import CourrielServer
from tests.jmap.conftest import base, tls


def test_basic_and_bearer(server: CourrielServer) -> None:
    url = base(server) + "/jmap/session"
    ok = httpx.get(url, verify=tls(server), auth=("alice@example.test", "alice-pw"))
    assert ok.status_code == 200 and ok.json()["username"] == "alice@example.test"

    out = server.cli("token", "add", "bob@example.test", "--label", "test").stdout
    m = re.search(r"token (\d+) for bob@example.test: (cjt_\S+)", out)
    assert m, out
    token_id, token = m.group(1), m.group(2)
    assert f"{token_id}\tbob@example.test" in server.cli("token", "list").stdout
    r = httpx.get(url, verify=tls(server), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["username"] == "bob@example.test"
    server.cli("token", "del", token_id)
    r = httpx.get(url, verify=tls(server), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert "no tokens" in server.cli("token", "list", "bob@example.test").stdout


def test_refusals_and_rate_limit(tmp_path: Path) -> None:
    srv = CourrielServer(tmp_path, only=("http",), env={"COURRIEL_LIMITS_MAX_AUTH_FAILURES": "2"})
    srv.start()
    try:
        url = f"http://127.0.0.1:{srv.port('http')}/jmap/session"  # plain HTTP: allowed from loopback
        assert httpx.get(url, auth=("alice@example.test", "alice-pw")).status_code == 200
        assert httpx.get(url, auth=("alice@example.test", "wrong")).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer cjt_forged"}).status_code == 401
        # two failures: this address is locked out, even with the right password
        r = httpx.get(url, auth=("alice@example.test", "alice-pw"), timeout=30)
        assert r.status_code == 401
    finally:
        srv.stop()


def _conn(scheme: str, client: str) -> HTTPConnection:
    return HTTPConnection({"type": "http", "scheme": scheme, "client": (client, 5000), "server": ("mail", 80),
                           "path": "/", "headers": [], "query_string": b""})  # fmt: skip


def test_password_only_over_tls_or_loopback(tmp_path: Path) -> None:
    cfg = build_config({}, env={})
    ctx = Context(cfg, store=None)  # type: ignore[arg-type]
    assert not password_allowed(ctx, _conn("http", "192.0.2.7"))
    assert password_allowed(ctx, _conn("https", "192.0.2.7"))
    assert password_allowed(ctx, _conn("http", "127.0.0.1"))
    assert password_allowed(ctx, _conn("http", "::1"))
    cfg.http.allow_plaintext_auth = True
    assert password_allowed(ctx, _conn("http", "192.0.2.7"))


def test_token_helpers() -> None:
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token("Bearer ") is None and bearer_token("Bearer " + "x" * 300) is None
    assert len(token_hash("cjt_x")) == 32 and token_hash("a") != token_hash("b")
