"""The scheduler job that verifies recordings every minute."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from callcenter.db import Database
from recordings.verify import VerifyResult
from scheduler import jobs
from tests.conftest import make_settings
from tests.recordings.conftest import call_with_recording, pcm_wav


def test_verify_recordings_job(db: Database, tmp_path: Path, now: datetime) -> None:
    monitor = tmp_path / "monitor"
    settings = make_settings(tmp_path, db.url, storage={"monitor_dir": str(monitor)})
    assert jobs.JOBS["verify_recordings"].seconds == 60
    jobs.bind(jobs.Runtime(settings=settings, db=db, clock=lambda: now))
    result = jobs.run("verify_recordings")  # no folder and nothing due: a quiet no-op
    assert isinstance(result, VerifyResult) and result.claimed == 0
    pcm_wav(monitor / "a.wav", 1.0)
    call_with_recording(db, now - timedelta(minutes=5), "a.wav", ended=now - timedelta(minutes=1))
    result = jobs.run("verify_recordings")
    assert isinstance(result, VerifyResult) and result.verified == 1


def test_the_job_waits_for_an_absent_folder(
    db: Database, tmp_path: Path, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, db.url, storage={"monitor_dir": str(tmp_path / "not-mounted")})
    jobs.bind(jobs.Runtime(settings=settings, db=db, clock=lambda: now))
    call_with_recording(db, now - timedelta(minutes=5), "a.wav", ended=now - timedelta(minutes=1))
    assert jobs.run("verify_recordings") is None
    assert "not-mounted" in caplog.text
