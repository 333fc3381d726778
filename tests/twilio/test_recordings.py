"""Twilio recordings: registered by the callback, downloaded from the fake API, verified, deleted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Recording
from callcenter.settings import Settings
from recordings.twilio import fetch_recordings
from scheduler import jobs
from tests.twilio.conftest import (
    ACCOUNT,
    Clock,
    FakeTwilio,
    SignedClient,
    call_params,
    twilio_settings_for,
    wav_bytes,
)

SID = "CA" + "1" * 32
REC = "RE" + "5" * 32


def voicemail_callback(twilio: SignedClient, *, duration: int = 3, channels: int = 1, sid: str = REC) -> None:
    twilio.post("/twilio/voice", call_params())
    callback = {
        "AccountSid": ACCOUNT,
        "CallSid": SID,
        "RecordingSid": sid,
        "RecordingStatus": "completed",
        "RecordingDuration": str(duration),
        "RecordingChannels": str(channels),
    }
    assert twilio.post("/twilio/recording?kind=voicemail", callback).status_code == 204


def the_recording(db: Database, sid: str = REC) -> Recording:
    with db.read() as session:
        row = session.execute(select(Recording).where(Recording.external_id == sid)).scalar_one()
        session.expunge(row)
        return row


def test_a_recording_is_downloaded_verified_and_kept_at_twilio_by_default(
    twilio: SignedClient, twilio_settings: Settings, db: Database, fake_api: FakeTwilio, clock: Clock
) -> None:
    audio = wav_bytes(3.0)
    fake_api.recordings[REC] = audio
    voicemail_callback(twilio)
    assert the_recording(db).status == "pending"
    result = fetch_recordings(twilio_settings, db, clock(), sleep=lambda _: None)
    assert (result.claimed, result.verified, result.deleted) == (1, 1, 0)
    row = the_recording(db)
    assert (row.status, row.size_bytes, row.duration_s, row.problem) == ("verified", len(audio), 3.0, None)
    assert row.sha256 == hashlib.sha256(audio).hexdigest()
    assert row.uri == f"twilio/2026-11/{REC}.wav"
    stored = twilio_settings.path(twilio_settings.storage.recordings_dir) / row.uri
    assert stored.read_bytes() == audio
    assert fake_api.deleted == []
    # nothing is due any more
    assert fetch_recordings(twilio_settings, db, clock(), sleep=lambda _: None).claimed == 0


def test_a_dual_channel_recording_is_asked_for_with_two_channels_and_deleted_when_configured(
    tmp_path: Path, twilio: SignedClient, db: Database, fake_api: FakeTwilio, clock: Clock
) -> None:
    fake_api.recordings[REC] = wav_bytes(2.0, channels=2)
    voicemail_callback(twilio, duration=2, channels=2)
    settings = twilio_settings_for(tmp_path, db.url, fake_api.base_url, delete_after_download=True)
    result = fetch_recordings(settings, db, clock(), sleep=lambda _: None)
    assert (result.verified, result.deleted) == (1, 1)
    assert fake_api.deleted == [REC]
    media = [path for method, path, _ in fake_api.requests if method == "GET"]
    assert media == [f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{REC}.wav?RequestedChannels=2"]


def test_downloads_are_retried_with_backoff(
    twilio: SignedClient, twilio_settings: Settings, db: Database, fake_api: FakeTwilio, clock: Clock
) -> None:
    fake_api.recordings[REC] = wav_bytes(3.0)
    fake_api.media_failures = 3
    voicemail_callback(twilio)
    waits: list[float] = []
    result = fetch_recordings(twilio_settings, db, clock(), sleep=waits.append)
    assert result.verified == 1
    assert waits == [1.0, 2.0, 4.0]


def test_a_download_failing_every_time_stays_pending_and_is_tried_again_after_the_lease(
    tmp_path: Path, twilio: SignedClient, db: Database, fake_api: FakeTwilio, clock: Clock
) -> None:
    fake_api.recordings[REC] = wav_bytes(3.0)
    fake_api.media_failures = 100
    voicemail_callback(twilio)
    settings = twilio_settings_for(tmp_path, db.url, fake_api.base_url, download_retries=2)
    waits: list[float] = []
    result = fetch_recordings(settings, db, clock(), sleep=waits.append)
    assert (result.failed, waits) == (1, [1.0, 2.0])
    row = the_recording(db)
    assert (row.status, row.problem) == ("pending", "download failed: HTTP 503")
    assert fetch_recordings(settings, db, clock(), sleep=waits.append).claimed == 0  # leased
    fake_api.media_failures = 0
    later = fetch_recordings(settings, db, clock.advance(11 * 60), sleep=waits.append)
    assert later.verified == 1


def test_a_truncated_download_is_retried(
    tmp_path: Path, twilio: SignedClient, db: Database, fake_api: FakeTwilio, clock: Clock
) -> None:
    fake_api.recordings[REC] = wav_bytes(3.0)
    fake_api.truncate_media = True
    voicemail_callback(twilio)
    settings = twilio_settings_for(tmp_path, db.url, fake_api.base_url, download_retries=1)
    result = fetch_recordings(settings, db, clock(), sleep=lambda _: None)
    assert result.failed == 1
    assert (the_recording(db).problem or "").startswith("download failed:")


@pytest.mark.parametrize(
    ("audio", "problem"),
    [
        (wav_bytes(9.0), "duration 9.0 s, Twilio says 3 s"),
        (wav_bytes(3.0, channels=2), "2 channels, Twilio says 1"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "unreadable WAV header"),
    ],
)
def test_a_file_unlike_what_twilio_announced_is_invalid_and_kept_at_twilio(
    tmp_path: Path,
    twilio: SignedClient,
    db: Database,
    fake_api: FakeTwilio,
    clock: Clock,
    audio: bytes,
    problem: str,
) -> None:
    fake_api.recordings[REC] = audio
    voicemail_callback(twilio)
    settings = twilio_settings_for(tmp_path, db.url, fake_api.base_url, delete_after_download=True)
    result = fetch_recordings(settings, db, clock(), sleep=lambda _: None)
    assert result.invalid == 1
    row = the_recording(db)
    assert row.status == "invalid"
    assert (row.problem or "").startswith(problem)
    assert fake_api.deleted == []
    assert not (settings.path(settings.storage.recordings_dir) / f"twilio/2026-11/{REC}.wav").exists()


def test_a_failed_recording_registers_nothing(twilio: SignedClient, db: Database) -> None:
    twilio.post("/twilio/voice", call_params())
    callback = {"CallSid": SID, "RecordingSid": REC, "RecordingStatus": "failed", "RecordingDuration": "0"}
    assert twilio.post("/twilio/recording?kind=voicemail", callback).status_code == 204
    with db.read() as session:
        assert session.execute(select(Recording)).first() is None


def test_the_scheduler_job_fetches_when_twilio_is_configured(
    twilio: SignedClient, twilio_settings: Settings, db: Database, fake_api: FakeTwilio, clock: Clock
) -> None:
    assert "fetch_twilio_recordings" in jobs.JOBS
    fake_api.recordings[REC] = wav_bytes(3.0)
    voicemail_callback(twilio)
    result = jobs.fetch_twilio_recordings(jobs.Runtime(twilio_settings, db, clock))
    assert getattr(result, "verified", None) == 1
    assert the_recording(db).status == "verified"
