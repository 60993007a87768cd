"""courriel.toml: typed, validated, overridable from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.config import ConfigError, build_config, load_config, parse_listen, render_config


def test_defaults_are_development_ports_on_loopback() -> None:
    cfg = build_config({}, env={})
    ports = {name: s.addresses() for name, s in cfg.listeners().items()}
    assert ports["smtp"] == [("127.0.0.1", 2525)]
    assert ports["submission"] == [("127.0.0.1", 2587)]
    assert ports["submissions"] == [("127.0.0.1", 2465)]
    assert ports["imap"] == [("127.0.0.1", 1143)] and ports["imaps"] == [("127.0.0.1", 1993)]
    assert ports["pop3"] == [("127.0.0.1", 1110)] and ports["pop3s"] == [("127.0.0.1", 1995)]
    assert ports["http"] == [("127.0.0.1", 8080)]
    assert cfg.imap.allow_plaintext_auth is False
    assert cfg.pop3.allow_plaintext_auth is False and cfg.submission.allow_plaintext_auth is False


def test_render_then_load_round_trip(tmp_path: Path) -> None:
    cfg = build_config({"imap": {"listen": "127.0.0.1:1, [::1]:2"}}, env={})
    (tmp_path / "courriel.toml").write_text(render_config(cfg))
    again = load_config(tmp_path, env={})
    assert again.imap.addresses() == [("127.0.0.1", 1), ("::1", 2)]
    assert again.data_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"imap": {"lissen": "x"}}, "imap.lissen"),
        ({"nosuch": {}}, "nosuch"),
        ({"imap": {"listen": 143}}, "imap.listen"),
        ({"imap": {"listen": "localhost"}}, "imap.listen"),
        ({"imap": {"listen": "127.0.0.1:70000"}}, "imap.listen"),
        ({"imap": {"allow_plaintext_auth": "yes"}}, "imap.allow_plaintext_auth"),
        ({"limits": {"max_message_size": -1}}, "limits.max_message_size"),
        ({"limits": {"max_message_size": True}}, "limits.max_message_size"),
        ({"store": {"backend": "mysql"}}, "store.backend"),
        ({"server": {"log_level": "loud"}}, "server.log_level"),
    ],
)
def test_bad_keys_are_named(raw: dict[str, dict[str, object]], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(raw, env={})
    assert named in str(err.value)


def test_environment_overrides() -> None:
    env = {
        "COURRIEL_IMAP_LISTEN": "127.0.0.1:11143",
        "COURRIEL_IMAP_ALLOW_PLAINTEXT_AUTH": "true",
        "COURRIEL_LIMITS_MAX_MESSAGE_SIZE": "1000",
        "COURRIEL_DATA": "/ignored/not/a/key",
    }
    cfg = build_config({"imap": {"listen": "127.0.0.1:1"}}, env=env)
    assert cfg.imap.addresses() == [("127.0.0.1", 11143)]
    assert cfg.imap.allow_plaintext_auth is True
    assert cfg.limits.max_message_size == 1000


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"COURRIEL_IMAP_LISEN": "x"}, "COURRIEL_IMAP_LISEN"),
        ({"COURRIEL_NOPE_X": "1"}, "COURRIEL_NOPE_X"),
        ({"COURRIEL_LIMITS_MAX_MESSAGE_SIZE": "big"}, "COURRIEL_LIMITS_MAX_MESSAGE_SIZE"),
        ({"COURRIEL_IMAP_ENABLED": "maybe"}, "COURRIEL_IMAP_ENABLED"),
    ],
)
def test_bad_environment_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config({}, env=env)
    assert named in str(err.value)


def test_parse_listen() -> None:
    assert parse_listen("") == []
    assert parse_listen("0.0.0.0:25,[::]:25") == [("0.0.0.0", 25), ("::", 25)]


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no configuration"):
        load_config(tmp_path, env={})
    (tmp_path / "courriel.toml").write_text("[imap\n")
    with pytest.raises(ConfigError, match=r"courriel\.toml"):
        load_config(tmp_path, env={})


def test_env_section_with_underscore() -> None:
    cfg = build_config({}, env={"COURRIEL_MTA_STS_MODE": "enforce", "COURRIEL_MTA_STS_MAX_AGE": "86400"})
    assert (cfg.mta_sts.mode, cfg.mta_sts.max_age) == ("enforce", 86400)
    with pytest.raises(ConfigError, match=r"mta_sts\.mode"):
        build_config({}, env={"COURRIEL_MTA_STS_MODE": "sometimes"})
