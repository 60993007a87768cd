"""A courriel server with JMAP over HTTPS (jmapc insists on https://) and helpers."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import CourrielServer

USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission"]
ALICE = ("alice@example.test", "alice-pw")
BOB = ("bob@example.test", "bob-pw")


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    srv = CourrielServer(
        tmp_path_factory.mktemp("jmap"),
        env={
            "COURRIEL_HTTP_TLS": "true",
            "COURRIEL_JMAP_MAX_CALLS_IN_REQUEST": "16",
            "COURRIEL_JMAP_MAX_SIZE_UPLOAD": "100000",
        },
        plaintext_auth=True,
    )
    srv.start()
    yield srv
    srv.stop()


def tls(srv: CourrielServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(srv.cert))


def base(srv: CourrielServer) -> str:
    return f"https://127.0.0.1:{srv.port('http')}"


class Api:
    """A small JMAP client on httpx, for the exact requests of the RFC examples."""

    def __init__(self, srv: CourrielServer, auth: tuple[str, str] = ALICE, **kw: Any) -> None:
        self.srv = srv
        self.http = httpx.Client(base_url=base(srv), verify=tls(srv), auth=auth, timeout=30, **kw)
        self.session = self.http.get("/jmap/session").json()
        self.account = self.session["primaryAccounts"]["urn:ietf:params:jmap:mail"]

    def raw(self, calls: list[list[Any]], using: list[str] = USING, **extra: Any) -> httpx.Response:
        return self.http.post("/jmap/api", json={"using": using, "methodCalls": calls, **extra})

    def call(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """One call; returns its arguments (asserting it did not fail)."""
        r = self.raw([[name, {"accountId": self.account, **(args or {})}, "c"]])
        assert r.status_code == 200, r.text
        (resp_name, resp, _), *_ = r.json()["methodResponses"]
        assert resp_name == name, resp
        return resp  # type: ignore[no-any-return]

    def error(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        r = self.raw([[name, {"accountId": self.account, **args}, "c"]])
        (resp_name, resp, _), *_ = r.json()["methodResponses"]
        assert resp_name == "error", resp
        return resp  # type: ignore[no-any-return]

    def mailbox(self, role: str) -> str:
        boxes = self.call("Mailbox/get")["list"]
        return str(next(b["id"] for b in boxes if b["role"] == role))

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def api(server: CourrielServer) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()


def message(subject: str, body: str = "hello", to: str = "alice@example.test", extra: str = "") -> bytes:
    return (
        f"From: Bob <bob@example.test>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@example.test>\r\n{extra}Date: Tue, 1 Jul 2025 10:52:37 +0200\r\n\r\n{body}\r\n"
    ).encode()


def write_path(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.write_bytes(data)
    return path
