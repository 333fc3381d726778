"""Process wiring: ``callcenter agi`` runs the AMI listener next to FastAGI and stops it on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.exceptions import ConfigurationError
from callcenter.models import Call
from callcenter.voice.ami.main import build_ami, running_ami
from tests.conftest import FIXED_NOW, ROOT, _truncate, make_settings
from tests.voice.ami.conftest import SECRET, wait_for
from tests.voice.ami.fakeami import FakeAmi, load_capture


def test_no_ami_host_means_no_listener(tmp_path: Path, db: Database) -> None:
    settings = make_settings(tmp_path, db.url)
    assert build_ami(settings, db, lambda: FIXED_NOW) is None
    with running_ami(None) as service:
        assert service is None


def test_an_ami_host_without_a_secret_stops_start_up(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLCENTER_AMI__SECRET", raising=False)
    settings = make_settings(tmp_path, db.url, ami={"host": "127.0.0.1"})
    with pytest.raises(ConfigurationError, match="CALLCENTER_AMI__SECRET"):
        build_ami(settings, db, lambda: FIXED_NOW)


@pytest.fixture
def sqlite_db(sqlite_database: Database) -> Iterator[Database]:
    _truncate(sqlite_database)
    yield sqlite_database
    _truncate(sqlite_database)


def test_callcenter_agi_runs_the_listener_and_stops_it_on_sigterm(
    tmp_path: Path, sqlite_db: Database, fake_ami: FakeAmi
) -> None:
    env = {
        **os.environ,
        "CALLCENTER_SETTINGS": str(ROOT / "settings.toml"),
        "CALLCENTER_DATABASE__URL": sqlite_db.url,
        "CALLCENTER_STORAGE__VAR_DIR": str(tmp_path / "var"),
        "CALLCENTER_STORAGE__SPOOL_DIR": str(tmp_path / "var" / "spool"),
        "CALLCENTER_AGI__HOST": "127.0.0.1",
        "CALLCENTER_AGI__PORT": "0",
        "CALLCENTER_AMI__HOST": "127.0.0.1",
        "CALLCENTER_AMI__PORT": str(fake_ami.port),
        "CALLCENTER_AMI__SECRET": SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "callcenter.cli", "agi"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        fake_ami.wait_logins(1, timeout=20)
        fake_ami.send_events(load_capture())

        def recorded() -> bool:
            with sqlite_db.read() as session:
                call = session.execute(select(Call)).scalar_one_or_none()
                return call is not None and call.disposition == "answered" and call.ended_at is not None

        wait_for(recorded, timeout=10, message="the call on record")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    assert "AMI listener connecting to 127.0.0.1" in text
    assert "AMI listener stopped" in text
    wait_for(lambda: fake_ami.logoffs == 1, message="Logoff")
