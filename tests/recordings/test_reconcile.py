"""Reconciling the monitor folder with the recording rows."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete

from callcenter.db import Database
from callcenter.models import Recording
from recordings.reconcile import reconcile
from recordings.verify import verify
from tests.recordings.conftest import call_with_recording, pcm_wav


def age(path: Path, now: datetime, minutes: int = 30) -> None:
    stamp = (now - timedelta(minutes=minutes)).timestamp()
    os.utime(path, (stamp, stamp))


@pytest.fixture
def monitor(tmp_path: Path) -> Path:
    folder = tmp_path / "monitor"
    folder.mkdir()
    return folder


def test_a_clean_folder_has_no_problems(db: Database, monitor: Path, now: datetime) -> None:
    age(pcm_wav(monitor / "2026/a.wav", 1.0), now)
    start = now - timedelta(hours=1)
    call_with_recording(db, start, "2026/a.wav", answered=start, ended=start + timedelta(minutes=5))
    verify(db, monitor, now)
    report = reconcile(db, monitor, now)
    assert report.problems == 0
    assert report.to_dict()["problems"] == 0


def test_every_kind_of_problem_is_reported(db: Database, monitor: Path, now: datetime) -> None:
    start = now - timedelta(hours=1)
    answered, ended = start + timedelta(seconds=20), start + timedelta(minutes=5)
    age(pcm_wav(monitor / "2026/orphan.wav", 1.0), now)
    pcm_wav(monitor / "2026/still-writing.wav", 1.0)  # changed just now: not judged yet
    age(pcm_wav(monitor / ".copy-in-progress.wav", 1.0), now)
    age(pcm_wav(monitor / "known.wav", 1.0), now)
    (monitor / "bad.wav").write_bytes(b"garbage")
    call_with_recording(db, start, "known.wav", linkedid="1.1", answered=answered, ended=ended)
    call_with_recording(db, start, "gone.wav", linkedid="1.2", answered=answered, ended=ended)
    call_with_recording(db, start, "not-bridged.wav", linkedid="1.3", ended=ended)  # expected: no file
    call_with_recording(db, start, "bad.wav", linkedid="1.4", answered=answered, ended=ended)
    call_with_recording(db, start, "later.wav", linkedid="1.5")  # not due yet: pending
    unrecorded = call_with_recording(db, start, "x", linkedid="1.6", answered=answered, ended=ended)
    with db.transaction() as session:  # an answered call with no recording at all
        session.execute(delete(Recording).where(Recording.call_id == unrecorded))
    verify(db, monitor, now)

    report = reconcile(db, monitor, now)

    assert report.orphans == ["2026/orphan.wav"] and report.orphan_count == 1
    assert [call.call_id for call in report.unrecorded_calls] == [unrecorded]
    assert [rec.uri for rec in report.missing] == ["gone.wav"] and report.missing_count == 1
    assert report.missing_unanswered == 1
    assert [rec.uri for rec in report.invalid] == ["bad.wav"]
    assert report.pending == 1
    assert report.problems == 4
    data = report.to_dict()
    assert data["unrecorded_calls"][0]["answered_at"].startswith("2026-11-23T01:00:20")


def test_since_and_limit(db: Database, monitor: Path, now: datetime) -> None:
    old = now - timedelta(days=30)
    for i in range(3):
        call_with_recording(db, old, f"{i}.wav", linkedid=f"2.{i}", answered=old, ended=old)
        age(pcm_wav(monitor / f"orphan{i}.wav", 0.1), now)
    verify(db, monitor, now)
    assert reconcile(db, monitor, now).missing_count == 3
    recent = reconcile(db, monitor, now, since=now - timedelta(days=7), limit=2)
    assert recent.missing_count == 0
    assert recent.orphan_count == 3 and len(recent.orphans) == 2  # the folder is always walked whole


def test_symlinks_in_the_folder_are_not_followed(
    db: Database, monitor: Path, tmp_path: Path, now: datetime
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    age(pcm_wav(outside / "x.wav", 0.1), now)
    (monitor / "link").symlink_to(outside, target_is_directory=True)
    (monitor / "file-link.wav").symlink_to(outside / "x.wav")
    assert reconcile(db, monitor, now).orphan_count == 0
