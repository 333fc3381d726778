"""Reconciling the monitor folder with the recording rows."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from callcenter.db import Database
from callcenter.models import Recording
from recordings.reconcile import ShortRule, reconcile
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


def test_answered_calls_recorded_empty_or_far_shorter_than_the_talk_are_listed(
    db: Database, monitor: Path, now: datetime
) -> None:
    start = now - timedelta(hours=1)
    answered, ended = start + timedelta(seconds=20), start + timedelta(minutes=5)

    def recorded(name: str, seconds: float, **call: Any) -> int:
        age(pcm_wav(monitor / name, seconds), now)
        return call_with_recording(db, start, name, linkedid=name, ended=ended, **call)

    empty = recorded("empty.wav", 0.0, answered=answered, talk_s=8)  # bridged 8 s, nothing kept
    short = recorded("short.wav", 2.0, answered=answered, talk_s=60)  # 2 s of a 60 s talk
    recorded("whole.wav", 8.0, answered=answered, talk_s=8)
    recorded("transferred.wav", 15.4, answered=answered, talk_s=5)  # one file spans both bridges
    recorded("near.wav", 26.0, answered=answered, talk_s=60)  # 60 × 0.5 − 5 = 25: long enough
    recorded("talk-unknown.wav", 1.0, answered=answered)  # no AgentComplete: only "empty" can be told
    empty_unknown = recorded("empty-talk-unknown.wav", 0.0, answered=answered)
    recorded("never-bridged.wav", 0.0)  # not answered: a header-only file is expected
    recorded("never-bridged-2.wav", 0.0)
    call_with_recording(db, start, "not-yet.wav", linkedid="p", answered=answered, talk_s=60)  # pending
    verify(db, monitor, now)

    report = reconcile(db, monitor, now)

    assert [call.call_id for call in report.short] == [empty, short, empty_unknown]
    assert report.short_count == 3
    assert [(call.talk_s, call.recorded_s) for call in report.short] == [(8, 0.0), (60, 2.0), (None, 0.0)]
    assert report.empty_unanswered == 2
    assert report.problems == 3
    assert report.to_dict()["short"][1] == {
        "call_id": short,
        "external_id": "short.wav",
        "talk_s": 60,
        "recorded_s": 2.0,
    }
    strict = reconcile(db, monitor, now, short=ShortRule(ratio=1.0, tolerance_s=0))
    assert strict.short_count == 4  # near.wav: 26 s of 60


def test_an_answered_call_is_short_over_all_its_recordings(
    db: Database, monitor: Path, now: datetime
) -> None:
    start = now - timedelta(hours=1)
    call_id = call_with_recording(
        db, start, "part1.wav", answered=start, ended=start + timedelta(minutes=2), talk_s=40
    )
    age(pcm_wav(monitor / "part1.wav", 0.0), now)
    age(pcm_wav(monitor / "part2.wav", 39.0), now)
    with db.transaction() as session:  # a second MixMonitor file of the same call
        session.add(
            Recording(
                call_id=call_id,
                source="asterisk",
                external_id="part2.wav",
                uri="part2.wav",
                status="pending",
                created_at=start,
            )
        )
    verify(db, monitor, now)
    assert reconcile(db, monitor, now).short_count == 0


def test_recordings_of_calls_that_never_ended_are_listed_after_a_while(
    db: Database, monitor: Path, now: datetime
) -> None:
    stuck = call_with_recording(db, now - timedelta(hours=5), "stuck.wav", linkedid="s", answered=now)
    call_with_recording(db, now - timedelta(hours=1), "live.wav", linkedid="l", answered=now)
    report = reconcile(db, monitor, now)
    assert [(rec.call_id, rec.uri) for rec in report.not_ended] == [(stuck, "stuck.wav")]
    assert report.not_ended_count == 1 and report.pending == 2 and report.problems == 1
    assert "never ended" in (report.not_ended[0].problem or "")
    assert reconcile(db, monitor, now, stale=timedelta(minutes=30)).not_ended_count == 2
