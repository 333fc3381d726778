"""The ``callcenter`` command, as a newcomer uses it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from callcenter.cli import cli
from callcenter.db import Database
from callcenter.services.users import authenticate
from callcenter.settings import load_settings
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import RunningServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the command at the test database and a scratch var/ folder through the environment."""
    values = {
        "CALLCENTER_SETTINGS": str(ROOT / "settings.toml"),
        "CALLCENTER_DATABASE__URL": db.url,
        "CALLCENTER_STORAGE__VAR_DIR": str(tmp_path / "var"),
        "CALLCENTER_STORAGE__SPOOL_DIR": str(tmp_path / "var" / "spool"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), obj={}, input=input, catch_exceptions=False)
    return result.exit_code, result.output


def test_migrate_seed_and_create_user(env: dict[str, str], db: Database, tmp_path: Path) -> None:
    assert invoke("migrate")[0] == 0
    code, output = invoke("seed-demo")
    assert code == 0 and "admin / " in output
    logins = (tmp_path / "var" / "demo-logins.txt").read_text(encoding="utf-8")
    password = logins.splitlines()[0].split(" / ")[1]
    assert invoke("seed-demo")[1].count(password) == 1  # the same admin password the second time
    code, output = invoke("create-user", "qa1", "--role", "qa", "--password", "long enough password")
    assert code == 0, output
    with db.sessions() as session:
        assert authenticate(session, "admin", password) is not None
        assert authenticate(session, "qa1", "long enough password") is not None
    code, output = invoke("create-user", "qa1", "--role", "qa", "--password", "long enough password")
    assert code == 1 and "already exists" in output


def test_bad_settings_stop_with_a_message(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_HOURS__OPEN", "25:00")
    code, output = invoke("check-flows")
    assert code == 1 and "hours.open" in output


def test_check_flows(env: dict[str, str]) -> None:
    code, output = invoke("check-flows")
    assert code == 0 and "hotline v1" in output


def test_simulate_call_prints_the_route_and_call_id(
    env: dict[str, str], db: Database, now: datetime, tmp_path: Path
) -> None:
    settings = load_settings(ROOT / "settings.toml", overrides={"database": {"url": db.url}})
    server = build_server(settings, db, lambda: now, port=0)
    with RunningServer(server):
        code, output = invoke("simulate-call", "--digits", "2", "--port", str(server.port), "-v")
    assert code == 0, output
    assert "route: queue=complaint branch=complaint" in output
    assert "call id: 1 " in output
    assert "> GET DATA callcenter/hotline/zh/main_menu 6000 1" in output


def test_simulate_call_without_a_server_is_a_clear_error(env: dict[str, str]) -> None:
    code, output = invoke("simulate-call", "--digits", "2", "--port", "1")
    assert code == 1 and "could not reach the FastAGI server at 127.0.0.1:1" in output


def test_replay_spool_with_nothing_pending(env: dict[str, str]) -> None:
    code, output = invoke("replay-spool")
    assert code == 0 and "applied 0" in output
