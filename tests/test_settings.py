"""Settings: the shipped config.toml loads, unknown keys fail by name, every key is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from liveblog.errors import ConfigError
from liveblog.settings import all_keys, load_settings, settings_from_dict

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_config_loads_with_durable_defaults() -> None:
    settings = load_settings(ROOT / "config.toml", env={})
    assert settings.database.synchronous == "FULL"
    assert settings.limits.note_bytes == 65536
    assert settings.secret_key  # generated when the environment has none


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"server": {"prot": 1}}, "unknown key server.prot"),
        ({"sever": {}}, "unknown section [sever]"),
        ({"server": {"port": "80"}}, "server.port must be a whole number"),
        ({"limits": {"note_bytes": -1}}, "limits.note_bytes must not be negative"),
        ({"database": {"synchronous": "OFF"}}, "database.synchronous must be FULL"),
        ({"server": {"allowed_origins": "x"}}, "server.allowed_origins must be a list"),
        ({"archive": {"language": "klingon"}}, "archive.language must be one of en, fr"),
    ],
)
def test_bad_configuration_names_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(data, env={})
    assert message in info.value.message


def test_secrets_come_from_the_environment() -> None:
    settings = settings_from_dict({}, env={"LIVEBLOG_SECRET_KEY": "s3cret", "LIVEBLOG_DATABASE": "/tmp/x.db"})
    assert settings.secret_key == "s3cret"
    assert settings.database.path == "/tmp/x.db"
    assert "s3cret" not in repr(settings)


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)


def test_every_setting_is_documented_and_shipped() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    shipped = (ROOT / "config.toml").read_text()
    for key in all_keys():
        section, name = key.split(".")
        assert f"`{key}`" in doc, f"{key} is not documented in docs/configuration.md"
        assert re.search(rf"^\[{section}\][\s\S]*?^{name}\s*=", shipped, re.M), (
            f"{key} missing from config.toml"
        )
