"""The http listener takes no PROXY header; behind an HTTP proxy it believes X-Forwarded-For
from server.trusted_proxies only. Observed through /metrics, served to http.metrics_allow."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import CourrielServer


def _status(srv: CourrielServer, source: str, forwarded_for: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.get(f"http://127.0.0.1:{srv.port('http')}/metrics", headers=headers).status_code


def test_forwarded_for_believed_from_trusted_proxies_only(tmp_path: Path) -> None:
    env = {"COURRIEL_SERVER_TRUSTED_PROXIES": "127.0.0.2", "COURRIEL_HTTP_METRICS_ALLOW": "127.0.0.0/8"}
    with CourrielServer(tmp_path, users={}, only=("http",), env=env) as srv:
        assert _status(srv, "127.0.0.2", None) == 200
        # from the proxy: the client named in the header is outside metrics_allow
        assert _status(srv, "127.0.0.2", "203.0.113.9") == 403
        assert _status(srv, "127.0.0.2", "127.0.0.9") == 200
        # from anyone else: the header is ignored
        assert _status(srv, "127.0.0.3", "203.0.113.9") == 200


def test_forwarded_for_ignored_without_trusted_proxies(tmp_path: Path) -> None:
    with CourrielServer(tmp_path, users={}, only=("http",)) as srv:
        assert _status(srv, "127.0.0.1", "203.0.113.9") == 200
