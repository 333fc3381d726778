"""The ``callcenter`` command, as a newcomer uses it."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, update

from callcenter.cli import cli
from callcenter.db import Database
from callcenter.models import Call, Recording
from callcenter.services.users import authenticate
from callcenter.settings import load_settings
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import RunningServer
from tests.recordings.conftest import call_with_recording, pcm_wav

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
    assert code == 0 and "hotline v" in output and "— ok" in output


def test_simulate_call_prints_the_route_and_call_id(
    env: dict[str, str], db: Database, now: datetime, tmp_path: Path
) -> None:
    settings = load_settings(ROOT / "settings.toml", overrides={"database": {"url": db.url}})
    server = build_server(settings, db, lambda: now, port=0)
    with RunningServer(server):
        code, output = invoke("simulate-call", "--digits", "2", "--port", str(server.port), "-v")
    assert code == 0, output
    assert "route: queue=complaint branch=complaint" in output
    assert "call id (CC_CALL_ID): " in output and "/calls/asterisk/" in output
    assert "> GET DATA callcenter/hotline/zh/main_menu 6000 1" in output


def test_simulate_call_without_a_server_is_a_clear_error(env: dict[str, str]) -> None:
    code, output = invoke("simulate-call", "--digits", "2", "--port", "1")
    assert code == 1 and "could not reach the FastAGI server at 127.0.0.1:1" in output


def test_replay_spool_with_nothing_pending(env: dict[str, str]) -> None:
    code, output = invoke("replay-spool")
    assert code == 0 and "applied 0" in output


def test_recordings_verify_and_reconcile(
    env: dict[str, str], db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = tmp_path / "monitor"
    monkeypatch.setenv("CALLCENTER_STORAGE__MONITOR_DIR", str(monitor))
    start = datetime.now(UTC) - timedelta(hours=1)  # the command runs on the real clock
    call_with_recording(db, start, "ok.wav", linkedid="1.1", answered=start, ended=start)
    call_with_recording(db, start, "gone.wav", linkedid="1.2", answered=start, ended=start)
    code, output = invoke("recordings", "verify")
    assert code == 1 and "does not exist" in output  # the share is not mounted: nothing marked missing
    monitor.mkdir()
    pcm_wav(monitor / "ok.wav", 1.0)

    code, output = invoke("recordings", "verify", "--json")
    assert code == 0, output
    assert json.loads(output)["verified"] == 1 and json.loads(output)["missing"] == 1
    code, output = invoke("recordings", "verify")
    assert code == 0 and output.startswith("checked 0")

    code, output = invoke("recordings", "reconcile")
    assert code == 1, output  # a problem: gone.wav
    assert "recordings missing: 1" in output and "gone.wav" in output and "problems: 1" in output
    code, output = invoke("recordings", "reconcile", "--json")
    assert code == 1 and json.loads(output)["missing"][0]["uri"] == "gone.wav"

    with db.transaction() as session:  # the call keeps no recording at all
        session.execute(delete(Recording).where(Recording.uri == "gone.wav"))
    code, output = invoke("recordings", "reconcile", "--days", "0")
    assert code == 1 and "answered calls without a recording: 1" in output
    with db.transaction() as session:
        session.execute(update(Call).values(answered_at=None))
    code, output = invoke("recordings", "reconcile")
    assert code == 0 and "problems: 0" in output


def test_recordings_reconcile_lists_answered_calls_recorded_empty_or_short(
    env: dict[str, str], db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = tmp_path / "monitor"
    monkeypatch.setenv("CALLCENTER_STORAGE__MONITOR_DIR", str(monitor))
    monkeypatch.setenv("CALLCENTER_RECORDINGS__SHORT_RATIO", "0.9")
    start = datetime.now(UTC) - timedelta(hours=1)
    pcm_wav(monitor / "empty.wav", 0.0)
    pcm_wav(monitor / "short.wav", 20.0)
    pcm_wav(monitor / "unanswered.wav", 0.0)
    call_with_recording(db, start, "empty.wav", linkedid="3.1", answered=start, ended=start, talk_s=8)
    # 20 s < 30 × 0.9 − 5: short with this ratio (not with the default 0.5)
    short = call_with_recording(
        db, start, "short.wav", linkedid="3.2", answered=start, ended=start, talk_s=30
    )
    call_with_recording(db, start, "unanswered.wav", linkedid="3.3", ended=start)
    code, output = invoke("recordings", "verify", "--json")
    assert code == 0 and json.loads(output)["empty"] == 2 and json.loads(output)["verified"] == 1

    code, output = invoke("recordings", "reconcile")
    assert code == 1, output
    assert "answered calls recorded empty or short: 2" in output
    assert "(and 1 empty recordings of calls never answered: expected)" in output
    assert f"call {short} (linkedid 3.2): 20 s recorded, talked 30 s" in output


@pytest.mark.parametrize("command", ["agi", "serve"])
def test_a_busy_fastagi_port_stops_start_up_with_one_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        monkeypatch.setenv("CALLCENTER_AGI__PORT", str(port))
        monkeypatch.setenv("CALLCENTER_WEB__SECRET_KEY", "a test secret key of some length")
        code, output = invoke(command)
    assert code == 1, output
    assert output.strip() == (
        f"Error: FastAGI: cannot listen on 127.0.0.1:{port}: address already in use "
        "(is another `callcenter agi` or `callcenter serve` running?)"
    )
