"""Real ManageSieve clients: sieve-connect (Debian; STARTTLS, then PLAIN) and sievelib."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sievelib.managesieve import Client

from tests.harness import CourrielServer
from tests.tools import need


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    env = {"COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH": "true"}
    srv = CourrielServer(tmp_path_factory.mktemp("msc"), only=("managesieve",), env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def sieve_connect(srv: CourrielServer, *args: str) -> subprocess.CompletedProcess[str]:
    tool = need("sieve-connect")
    cmd = [tool, "-s", "127.0.0.1", "-p", str(srv.port("managesieve")), "-u", "alice@example.test",
           "--passwordfd", "0", "--notlsverify", "--noclearauth", "--tlshostname", "mail.example.test", *args]  # fmt: skip
    return subprocess.run(cmd, input="alice-pw\n", capture_output=True, text=True, timeout=60)


def test_sieve_connect_over_starttls(server: CourrielServer, tmp_path: Path) -> None:
    script = tmp_path / "filter.sieve"
    script.write_text('require ["fileinto"];\nif header :contains "subject" "x" { fileinto "Junk"; }\n')
    done = sieve_connect(server, "--upload", "--localsieve", str(script), "--remotesieve", "filter")
    assert done.returncode == 0, done.stderr
    assert sieve_connect(server, "--activate", "--remotesieve", "filter").returncode == 0
    listing = sieve_connect(server, "--list")
    assert listing.stdout.split() == ['"filter"', "ACTIVE"]
    out = tmp_path / "back.sieve"
    assert sieve_connect(server, "--download", "--remotesieve", "filter", "--localsieve", str(out)).returncode == 0
    assert out.read_text() == script.read_text()
    bad = tmp_path / "bad.sieve"
    bad.write_text('fileinto "x";\n')
    refused = sieve_connect(server, "--checkscript", "--localsieve", str(bad))
    assert refused.returncode != 0 and "needs require" in refused.stdout + refused.stderr
    assert sieve_connect(server, "--deactivate").returncode == 0
    assert sieve_connect(server, "--delete", "--remotesieve", "filter").returncode == 0
    assert sieve_connect(server, "--list").stdout.strip() == ""


def test_sievelib_client(server: CourrielServer) -> None:
    client = Client("127.0.0.1", server.port("managesieve"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plaintext on loopback, by configuration
        assert client.connect("bob@example.test", "bob-pw", authmech="LOGIN")
    try:
        assert "vacation" in client.get_sieve_capabilities()
        assert client.havespace("v", 100)
        assert client.putscript("v", 'require "vacation"; vacation "away";')
        assert client.putscript("w", "keep;")
        assert client.setactive("v")
        assert client.listscripts() == ("v", ["w"])
        assert client.renamescript("w", "w2")
        assert client.getscript("w2") == "keep;"
        assert not client.deletescript("v")  # active
        assert client.checkscript("keep;") and not client.checkscript("nope;")
        assert client.deletescript("w2")
    finally:
        client.logout()
