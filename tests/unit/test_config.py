from __future__ import annotations

from pathlib import Path

import pytest

from dmp_xds.config import ConfigError, load_settings, resolve


def test_vihf_freshness_and_sha1_settings():
    settings = load_settings(environ={"DMP_XDS_VIHF_MAX_AGE_SECONDS": "90", "DMP_XDS_VIHF_SHA1": "refuse"})
    assert (settings.vihf_max_age_seconds, settings.vihf_sha1) == (90.0, "refuse")
    assert (load_settings(environ={}).vihf_max_age_seconds, load_settings(environ={}).vihf_sha1) == (300.0, "accept")


def test_defaults():
    settings = load_settings(environ={})
    assert settings.data_dir == Path("var") and settings.port == 8080 and settings.mllp_port is None


def test_connection_limits_and_their_defaults():
    from dmp_xds.transport.http_protocol import ConnectionLimits

    settings = load_settings(environ={"DMP_XDS_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2"})
    assert (
        settings.max_head_bytes,
        settings.head_timeout_seconds,
        settings.idle_timeout_seconds,
        settings.max_connections_per_client,
    ) == (65536, 10.0, 15.0, 64)
    assert ConnectionLimits.from_settings(settings) == ConnectionLimits(
        65536, 10.0, 64, frozenset({"10.0.0.1", "10.0.0.2"})
    )


def test_environment_wins_over_toml(tmp_path):
    config = tmp_path / "dmp.toml"
    config.write_text('port = 9000\ndatabase_url = "postgresql://x@h/db"\n[other]\nignored = 1\n')
    with pytest.raises(ConfigError, match="unknown setting 'other'"):
        load_settings(config, environ={})
    config.write_text('[dmp_xds]\nport = 9000\ndatabase_url = "postgresql://x@h/db"\n')
    settings = load_settings(config, environ={"DMP_XDS_PORT": "9100"})
    assert settings.port == 9100
    assert settings.database_url == "postgresql://x@h/db"


def test_config_file_from_environment(tmp_path):
    config = tmp_path / "dmp.toml"
    config.write_text("mllp_port = 2575\n")
    assert load_settings(environ={"DMP_XDS_CONFIG": str(config)}).mllp_port == 2575


@pytest.mark.parametrize(
    "env,message",
    [
        ({"DMP_XDS_PORT": "eighty"}, "port"),
        ({"DMP_XDS_PROFILE": "us"}, "PROFILE"),
        ({"DMP_XDS_CONFIG": "/nonexistent.toml"}, "does not exist"),
        ({"DMP_XDS_MAX_HEAD_BYTES": "0"}, "DMP_XDS_MAX_HEAD_BYTES must be positive"),
        ({"DMP_XDS_HEAD_TIMEOUT_SECONDS": "-1"}, "DMP_XDS_HEAD_TIMEOUT_SECONDS must be positive"),
        ({"DMP_XDS_IDLE_TIMEOUT_SECONDS": "0"}, "DMP_XDS_IDLE_TIMEOUT_SECONDS must be positive"),
        ({"DMP_XDS_MAX_CONNECTIONS_PER_CLIENT": "-1"}, "DMP_XDS_MAX_CONNECTIONS_PER_CLIENT must be 0"),
        ({"DMP_XDS_VIHF_SHA1": "yes"}, "DMP_XDS_VIHF_SHA1 must be 'accept' or 'refuse'"),
        ({"DMP_XDS_VIHF_MAX_AGE_SECONDS": "0"}, "DMP_XDS_VIHF_MAX_AGE_SECONDS must be positive"),
    ],
)
def test_bad_settings_say_what_is_wrong(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_bad_toml(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("port = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config, environ={})


def test_repository_unique_id_is_generated_once_and_kept(tmp_path):
    first = resolve(load_settings(environ={"DMP_XDS_DATA_DIR": str(tmp_path)}))
    second = resolve(load_settings(environ={"DMP_XDS_DATA_DIR": str(tmp_path)}))
    assert first.repository_unique_id == second.repository_unique_id
    assert first.repository_unique_id.startswith("2.25.")
    assert first.database_url == f"sqlite:///{(tmp_path / 'registry.db').resolve()}"


def test_configured_repository_unique_id_is_used(tmp_path):
    settings = resolve(
        load_settings(environ={"DMP_XDS_DATA_DIR": str(tmp_path), "DMP_XDS_REPOSITORY_UNIQUE_ID": "1.2.250.1.999.7"})
    )
    assert settings.repository_unique_id == "1.2.250.1.999.7"
