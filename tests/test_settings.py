from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from callcenter.exceptions import ConfigurationError
from callcenter.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_settings_carry_the_organisations_defaults() -> None:
    settings = load_settings(ROOT / "settings.toml")
    assert settings.organisation.timezone == "Asia/Shanghai"
    assert settings.organisation.phone_region == "CN"
    assert (settings.hours.open, settings.hours.close) == (time(6), time(22))
    assert settings.ivr.max_retries == 2
    assert settings.ivr.default_queue == "consultation"
    assert settings.callers.frequent_calls == 3 and settings.callers.frequent_window_days == 7


def test_settings_are_immutable() -> None:
    settings = load_settings(ROOT / "settings.toml")
    with pytest.raises(Exception, match="frozen"):
        settings.hours.open = time(7)  # type: ignore[misc]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"hours\.opens: unknown setting"):
        load_settings(write(tmp_path, '[hours]\nopens = "06:00"\n'))


def test_unknown_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"hourz: unknown setting"):
        load_settings(write(tmp_path, "[hourz]\nx = 1\n"))


def test_bad_value_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"organisation\.timezone.*unknown time zone"):
        load_settings(write(tmp_path, '[organisation]\ntimezone = "Mars/Olympus"\n'))
    with pytest.raises(ConfigurationError, match=r"hours\.close"):
        load_settings(write(tmp_path, '[hours]\nopen = "22:00"\nclose = "06:00"\n'))


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CALLCENTER_TWILIO__AUTH_TOKEN"):
        load_settings(write(tmp_path, '[twilio]\nauth_token = "abc"\n'))


def test_environment_overrides_nested_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_HOURS__OPEN", "07:30")
    monkeypatch.setenv("CALLCENTER_WEB__SECRET_KEY", "s3cret")
    settings = load_settings(write(tmp_path, '[hours]\nopen = "06:00"\n'))
    assert settings.hours.open == time(7, 30)
    assert settings.web.secret_key is not None
    assert settings.web.secret_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_bad_environment_value_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_AGI__PORT", "not-a-port")
    with pytest.raises(ConfigurationError, match=r"agi\.port"):
        load_settings(write(tmp_path, ""))


def test_relative_sqlite_path_is_resolved_against_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[database]\nurl = "sqlite:///var/x.db"\n'))
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'x.db'}"


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
