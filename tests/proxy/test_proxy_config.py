"""Configuration of the PROXY protocol: per-listener ``proxy_protocol``, ``[server]
trusted_proxies`` and ``proxy_timeout``; what the listeners are given."""

from __future__ import annotations

import pytest

from courriel.config import ConfigError, build_config
from courriel.proxy import policies


def test_off_by_default() -> None:
    cfg = build_config({}, env={})
    assert not any(section.proxy_protocol for section in cfg.listeners().values())
    assert cfg.server.trusted_proxies == [] and policies(cfg) == {}


def test_listeners_with_proxy_protocol_get_a_policy() -> None:
    cfg = build_config(
        {"server": {"trusted_proxies": ["10.0.0.5", "192.0.2.0/24"], "proxy_timeout": 3},
         "smtp": {"proxy_protocol": True}, "imaps": {"proxy_protocol": True}},
        env={},
    )  # fmt: skip
    got = policies(cfg)
    assert set(got) == {"smtp", "imaps"}
    assert got["smtp"].timeout == 3.0
    assert got["smtp"].trusts("10.0.0.5") and got["imaps"].trusts("192.0.2.77")
    assert not got["smtp"].trusts("10.0.0.6")


def test_environment_overrides() -> None:
    env = {"COURRIEL_SERVER_TRUSTED_PROXIES": "127.0.0.2, ::1", "COURRIEL_POP3_PROXY_PROTOCOL": "true"}
    cfg = build_config({}, env=env)
    assert cfg.server.trusted_proxies == ["127.0.0.2", "::1"]
    assert set(policies(cfg)) == {"pop3"}


def test_a_disabled_listener_gets_no_policy() -> None:
    cfg = build_config(
        {"server": {"trusted_proxies": ["10.0.0.5"]}, "pop3": {"proxy_protocol": True, "enabled": False}}, env={}
    )
    assert policies(cfg) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"smtp": {"proxy_protocol": True}}, "smtp.proxy_protocol: needs server.trusted_proxies"),
        ({"server": {"trusted_proxies": ["10.0.0.5"]}, "http": {"proxy_protocol": True}}, "http.proxy_protocol"),
        ({"server": {"trusted_proxies": ["10.0.0.300"]}}, "server.trusted_proxies: '10.0.0.300'"),
        ({"server": {"trusted_proxies": "10.0.0.5"}}, "server.trusted_proxies"),
        ({"server": {"proxy_timeout": 2}}, "server.proxy_timeout"),
        ({"imap": {"proxy_protocol": "yes"}}, "imap.proxy_protocol"),
    ],
)
def test_errors(raw: dict[str, dict[str, object]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(raw, env={})
