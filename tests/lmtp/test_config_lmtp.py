"""[lmtp] and [lookup] configuration, and an LMTP listener on a Unix socket only."""

from __future__ import annotations

import smtplib

import pytest

from courriel.cli.init import make_config
from courriel.config import ConfigError, build_config
from tests.harness import CourrielServer
from tests.lmtp.mtas import private_dir


def test_defaults() -> None:
    cfg = build_config({}, env={})
    assert cfg.lmtp.addresses() == [("127.0.0.1", 2424)]
    assert cfg.lmtp.socket == "" and cfg.lmtp.socket_mode == "666"
    assert cfg.lookup.addresses() == [("127.0.0.1", 2426)]
    production = make_config("example.test", "mail.example.test", production=True)
    assert production.lmtp.listen == "127.0.0.1:24"  # never public: LMTP has no authentication
    assert production.lookup.listen == "127.0.0.1:2426"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"lmtp": {"socket_mode": "rw"}}, "lmtp.socket_mode"),
        ({"lmtp": {"trusted_networks": "127.0.0.0/8, nonsense"}}, "lmtp.trusted_networks"),
        ({"lmtp": {"listen": "localhost"}}, "lmtp.listen"),
        ({"lookup": {"idle_timeout": 0}}, "lookup.idle_timeout"),
        ({"lookup": {"nope": 1}}, "lookup.nope"),
    ],
)
def test_bad_values(raw: dict[str, dict[str, object]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(raw, env={})


def test_unix_socket_only(tmp_path_factory: pytest.TempPathFactory) -> None:
    sockdir = private_dir("courriel-lmtp-only-")
    env = {
        "COURRIEL_LMTP_LISTEN": "",
        "COURRIEL_LMTP_SOCKET": str(sockdir / "s.sock"),
        "COURRIEL_LMTP_SOCKET_MODE": "600",
    }
    with CourrielServer(tmp_path_factory.mktemp("unixonly"), only=("lmtp",), env=env) as srv:
        assert f"courriel: lmtp listening on unix:{sockdir / 's.sock'}" in srv.output
        assert oct((sockdir / "s.sock").stat().st_mode & 0o777) == "0o600"
        with smtplib.LMTP(str(sockdir / "s.sock")) as c:
            assert (
                c.sendmail("a@remote.test", ["alice@example.test"], b"Subject: x\r\n\r\nx\r\n")
                == {}
            )
    assert not (sockdir / "s.sock").exists()  # removed at stop
    sockdir.rmdir()
