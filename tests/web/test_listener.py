"""The http listener: uvicorn inside `courriel serve`, body limits, clean stop."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import CourrielServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    srv = CourrielServer(
        tmp_path_factory.mktemp("web"), only=("http",), env={"COURRIEL_HTTP_MAX_REQUEST_SIZE": "1000"}
    )
    srv.start()
    yield srv
    srv.stop()


def url(srv: CourrielServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.port('http')}{path}"


def test_listening_line(server: CourrielServer) -> None:
    assert any(f"http listening on 127.0.0.1:{server.port('http')}" in line for line in server.output)


def test_unknown_path_is_404(server: CourrielServer) -> None:
    r = httpx.get(url(server, "/no/such/thing-at-all"))
    assert r.status_code == 404
    assert "server" not in r.headers  # no version advertised


def test_body_over_limit_is_413(server: CourrielServer) -> None:
    r = httpx.post(url(server, "/no/such/thing-at-all"), content=b"x" * 5000)
    assert r.status_code == 413


def test_chunked_body_over_limit_is_413(server: CourrielServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 500

    r = httpx.post(url(server, "/no/such/thing-at-all"), content=chunks())
    assert r.status_code in (404, 413)  # a route-less path may answer before reading the body


def test_garbage_request_gets_400_and_server_goes_on(server: CourrielServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=5) as s:
        s.sendall(b"\x00\x01GARBAGE\r\n\r\n")
        answer = s.recv(100)
    assert answer.startswith(b"HTTP/1.1 400")
    assert httpx.get(url(server, "/x")).status_code == 404


def test_https_when_tls_on(tmp_path: Path) -> None:
    srv = CourrielServer(tmp_path, only=("http",), env={"COURRIEL_HTTP_TLS": "true"})
    srv.start()
    try:
        tls = ssl.create_default_context(cafile=str(srv.cert))
        tls.check_hostname = False  # the self-signed certificate names the host, not 127.0.0.1
        r = httpx.get(f"https://127.0.0.1:{srv.port('http')}/x", verify=tls)
        assert r.status_code == 404
    finally:
        srv.stop()

