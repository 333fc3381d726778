"""Verifying recordings against the monitor folder, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from callcenter.db import Database
from callcenter.models import Call, Recording
from recordings.media import MonitorFolderMissing, inspect, monitor_root
from recordings.verify import DEFAULT_POLICY, Policy, _store, claim, due, verify, verify_all
from tests.conftest import FIXED_NOW, make_settings
from tests.recordings.conftest import call_with_recording, pcm_wav, wav49


@pytest.fixture
def monitor(tmp_path: Path) -> Path:
    folder = tmp_path / "monitor"
    folder.mkdir()
    return folder


def rows(db: Database) -> dict[str, Recording]:
    with db.read() as session:
        return {rec.uri: rec for rec in session.scalars(select(Recording))}


def test_ended_calls_are_verified_missing_and_invalid_files_named(
    db: Database, monitor: Path, now: datetime
) -> None:
    start = now - timedelta(minutes=10)
    pcm_wav(monitor / "2026/11/23/ok.wav", 3.0)
    wav49(monitor / "2026/11/23/gsm.WAV", 100)
    (monitor / "bad.wav").write_bytes(b"not a wav file")
    answered, ended = start + timedelta(seconds=30), start + timedelta(minutes=5)
    call_with_recording(db, start, "2026/11/23/ok.wav", linkedid="1.1", answered=answered, ended=ended)
    call_with_recording(db, start, "2026/11/23/gsm.WAV", linkedid="1.2", answered=answered, ended=ended)
    call_with_recording(db, start, "bad.wav", linkedid="1.3", answered=answered, ended=ended)
    call_with_recording(db, start, "gone.wav", linkedid="1.4", answered=answered, ended=ended)
    call_with_recording(db, start, "never-answered.wav", linkedid="1.5", ended=ended)

    result = verify(db, monitor, now)

    assert (result.claimed, result.verified, result.missing, result.invalid) == (5, 2, 2, 1)
    found = rows(db)
    ok = found["2026/11/23/ok.wav"]
    assert (ok.status, ok.duration_s, ok.size_bytes, ok.problem) == ("verified", 3.0, 44 + 48000, None)
    assert ok.verified_at == now and ok.sha256 and len(ok.sha256) == 64
    assert found["2026/11/23/gsm.WAV"].duration_s == 4.0
    assert found["bad.wav"].status == "invalid" and "WAV header" in (found["bad.wav"].problem or "")
    assert found["gone.wav"].status == "missing" and "no file gone.wav" in (found["gone.wav"].problem or "")
    assert "never answered" in (found["never-answered.wav"].problem or "")


def test_running_again_changes_nothing(db: Database, monitor: Path, now: datetime) -> None:
    pcm_wav(monitor / "a.wav", 1.0)
    call_with_recording(db, now - timedelta(minutes=5), "a.wav", ended=now - timedelta(minutes=1))
    assert verify(db, monitor, now).verified == 1
    before = rows(db)["a.wav"].verified_at
    assert verify(db, monitor, now + timedelta(minutes=1)).claimed == 0
    assert rows(db)["a.wav"].verified_at == before


def test_a_live_call_is_never_checked_however_long_it_lasts(
    db: Database, monitor: Path, now: datetime
) -> None:
    pcm_wav(monitor / "live.wav", 1.0)
    call_with_recording(db, now - timedelta(hours=1), "live.wav")  # no hang-up (yet)
    assert verify(db, monitor, now).claimed == 0
    assert verify(db, monitor, now + timedelta(days=30)).claimed == 0
    assert rows(db)["live.wav"].status == "pending"


def test_a_file_read_while_the_call_is_going_is_not_judged(
    db: Database, monitor: Path, now: datetime
) -> None:
    """MixMonitor writes the WAV header's sizes only when it closes the file at hang-up."""
    path = pcm_wav(monitor / "open.wav", 2.0)
    closed = path.read_bytes()
    path.write_bytes(closed[:40] + b"\x00\x00\x00\x00" + closed[44:])  # data size 0: still open
    start = now - timedelta(minutes=2)
    call_id = call_with_recording(db, start, "open.wav", answered=start)
    assert verify(db, monitor, now).claimed == 0  # the caller is still talking
    with db.transaction() as session:  # the caller hangs up now: MixMonitor is closing the file
        session.execute(update(Call).where(Call.id == call_id).values(ended_at=now))
    assert verify(db, monitor, now).claimed == 0
    assert verify(db, monitor, now + DEFAULT_POLICY.delay - timedelta(seconds=1)).claimed == 0
    path.write_bytes(closed)  # closed, its header finished
    result = verify(db, monitor, now + DEFAULT_POLICY.delay)
    assert (result.claimed, result.verified) == (1, 1)
    assert rows(db)["open.wav"].duration_s == 2.0


def test_only_asterisk_recordings_are_checked(db: Database, monitor: Path, now: datetime) -> None:
    call_with_recording(db, now - timedelta(minutes=5), "a.wav", ended=now - timedelta(minutes=1))
    with db.transaction() as session:
        session.execute(Recording.__table__.update().values(source="twilio"))
    assert verify(db, monitor, now).claimed == 0


def test_batches(db: Database, monitor: Path, now: datetime) -> None:
    for i in range(7):
        pcm_wav(monitor / f"{i}.wav", 0.1)
        call_with_recording(
            db, now - timedelta(minutes=5), f"{i}.wav", linkedid=f"9.{i}", ended=now - timedelta(minutes=1)
        )
    assert verify(db, monitor, now, batch=3).claimed == 3
    total = verify_all(db, monitor, now, batch=3)
    assert (total.claimed, total.verified) == (4, 4)
    assert {rec.status for rec in rows(db).values()} == {"verified"}


def test_an_absent_monitor_folder_changes_nothing(db: Database, tmp_path: Path, now: datetime) -> None:
    absent = tmp_path / "not-mounted"
    assert verify(db, absent, now).claimed == 0  # nothing due: no error either
    call_with_recording(db, now - timedelta(minutes=5), "a.wav", ended=now - timedelta(minutes=1))
    with pytest.raises(MonitorFolderMissing):
        verify(db, absent, now)
    assert rows(db)["a.wav"].status == "pending" and rows(db)["a.wav"].verified_at is None


def test_missing_files_are_looked_for_again_on_request(db: Database, monitor: Path, now: datetime) -> None:
    call_with_recording(
        db,
        now - timedelta(minutes=5),
        "late.wav",
        answered=now - timedelta(minutes=4),
        ended=now - timedelta(minutes=1),
    )
    assert verify(db, monitor, now).missing == 1
    assert verify(db, monitor, now, recheck_missing=True).claimed == 0  # each once per run
    pcm_wav(monitor / "late.wav", 2.0)  # the share was mounted late
    result = verify_all(db, monitor, now + timedelta(minutes=1), recheck_missing=True, batch=1)
    assert (result.claimed, result.verified) == (1, 1)
    assert rows(db)["late.wav"].problem is None


def test_a_claim_is_exclusive_until_its_lease_expires(db: Database, monitor: Path, now: datetime) -> None:
    pcm_wav(monitor / "a.wav", 1.0)
    call_with_recording(db, now - timedelta(minutes=5), "a.wav", ended=now - timedelta(minutes=1))
    assert len(claim(db, now)) == 1  # this process dies before writing its result
    assert verify(db, monitor, now + timedelta(minutes=5)).claimed == 0  # claimed by the other
    late = now + timedelta(minutes=11)
    assert verify(db, monitor, late).verified == 1  # the lease expired: taken over
    assert rows(db)["a.wav"].verified_at == late


def test_a_result_is_not_written_over_a_claim_taken_over(db: Database, monitor: Path, now: datetime) -> None:
    pcm_wav(monitor / "a.wav", 1.0)
    call_with_recording(db, now - timedelta(minutes=5), "a.wav", ended=now - timedelta(minutes=1))
    [slow] = claim(db, now)
    late = now + timedelta(minutes=11)
    assert verify(db, monitor, late).verified == 1
    assert not _store(db, slow, inspect(monitor_root(monitor), "a.wav"), now, Policy())
    assert rows(db)["a.wav"].verified_at == late


def test_two_processes_verify_each_recording_once(db: Database, monitor: Path, now: datetime) -> None:
    count = 40
    for i in range(count):
        pcm_wav(monitor / f"{i}.wav", 0.2)
        call_with_recording(
            db, now - timedelta(minutes=5), f"{i}.wav", linkedid=f"7.{i}", ended=now - timedelta(minutes=1)
        )
    other = Database(db.url)  # its own engine and connections, like a second process
    results = []
    barrier = threading.Barrier(2)

    def run(database: Database) -> None:
        barrier.wait()
        results.append(verify_all(database, monitor, now, batch=5))

    threads = [threading.Thread(target=run, args=(database,)) for database in (db, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    other.dispose()
    assert sum(result.claimed for result in results) == count
    assert sum(result.verified for result in results) == count
    assert sum(result.lost for result in results) == 0
    assert {rec.status for rec in rows(db).values()} == {"verified"}


def test_postgresql_skips_rows_another_transaction_holds(db: Database, monitor: Path, now: datetime) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): there is nothing to skip")
    for i in range(4):
        call_with_recording(
            db, now - timedelta(minutes=5), f"{i}.wav", linkedid=f"5.{i}", ended=now - timedelta(minutes=1)
        )
    with db.transaction() as session:
        held = session.execute(due(now).limit(2).with_for_update(of=Recording, skip_locked=True)).all()
        other = Database(db.url)
        try:
            taken = claim(other, now)  # would block here without SKIP LOCKED
        finally:
            other.dispose()
    assert {row.id for row in held}.isdisjoint({item.id for item in taken})
    assert len(taken) == 2


def test_a_header_only_wav_is_empty_not_verified_and_not_an_error(
    db: Database, monitor: Path, now: datetime
) -> None:
    """MixMonitor's b option leaves a 44-byte WAV (data size 0) for a call that was never bridged."""
    header = pcm_wav(monitor / "never-bridged.wav", 0.0)
    assert header.stat().st_size == 44
    call_id = call_with_recording(
        db, now - timedelta(minutes=3), "never-bridged.wav", ended=now - timedelta(minutes=1)
    )
    result = verify(db, monitor, now)
    assert (result.claimed, result.empty, result.verified, result.invalid) == (1, 1, 0, 0)
    rec = rows(db)["never-bridged.wav"]
    assert (rec.status, rec.size_bytes, rec.duration_s, rec.next_check_at) == ("empty", 44, 0.0, None)
    assert "header-only" in (rec.problem or "")
    with db.read() as session:  # no audio to review: the QA draw must not count it as verified
        assert session.get(Call, call_id).recordings_verified is False  # type: ignore[union-attr]
    assert verify(db, monitor, now + timedelta(hours=1)).claimed == 0  # judged for good


def test_an_invalid_file_is_looked_at_again_and_becomes_verified_once_fixed(
    db: Database, monitor: Path, now: datetime
) -> None:
    path = pcm_wav(monitor / "synced-late.wav", 3.0)
    good = path.read_bytes()
    path.write_bytes(good[:1000])  # the copy to this share stopped short
    start = now - timedelta(minutes=5)
    call_id = call_with_recording(
        db, start, "synced-late.wav", answered=start, ended=now - timedelta(minutes=1)
    )
    policy = Policy(recheck_tries=3, recheck_first=timedelta(minutes=5))
    assert verify(db, monitor, now, policy).invalid == 1
    rec = rows(db)["synced-late.wav"]
    assert (rec.status, rec.check_attempts, rec.next_check_at) == ("invalid", 1, now + timedelta(minutes=5))
    assert verify(db, monitor, now + timedelta(minutes=4), policy).claimed == 0  # not yet
    path.write_bytes(good)  # the share re-synced
    later = now + timedelta(minutes=5)
    result = verify(db, monitor, later, policy)
    assert (result.claimed, result.verified) == (1, 1)
    rec = rows(db)["synced-late.wav"]
    assert (rec.status, rec.problem, rec.duration_s) == ("verified", None, 3.0)
    assert (rec.check_attempts, rec.next_check_at, rec.verified_at) == (2, None, later)
    with db.read() as session:
        assert session.get(Call, call_id).recordings_verified is True  # type: ignore[union-attr]


def test_an_invalid_file_is_looked_at_a_bounded_number_of_times_with_back_off(
    db: Database, monitor: Path, now: datetime
) -> None:
    (monitor / "broken.wav").write_bytes(b"RIFF garbage")
    call_with_recording(db, now - timedelta(minutes=5), "broken.wav", ended=now - timedelta(minutes=1))
    policy = Policy(recheck_tries=3, recheck_first=timedelta(minutes=5))
    checked_at = []
    moment = now
    for _ in range(20):  # a day of runs every 10 minutes would do the same
        if verify(db, monitor, moment, policy).claimed:
            checked_at.append(moment)
        next_check = rows(db)["broken.wav"].next_check_at
        if next_check is None:
            break
        moment = next_check
    gaps = [later - earlier for earlier, later in itertools.pairwise(checked_at)]
    assert gaps == [timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20)]
    rec = rows(db)["broken.wav"]
    assert (rec.status, rec.check_attempts, rec.next_check_at) == ("invalid", 4, None)
    assert verify(db, monitor, now + timedelta(days=7), policy).claimed == 0  # given up: stays invalid


def test_no_recheck_when_the_policy_allows_none(db: Database, monitor: Path, now: datetime) -> None:
    (monitor / "broken.wav").write_bytes(b"RIFF garbage")
    call_with_recording(db, now - timedelta(minutes=5), "broken.wav", ended=now - timedelta(minutes=1))
    assert verify(db, monitor, now, Policy(recheck_tries=0)).invalid == 1
    assert rows(db)["broken.wav"].next_check_at is None


def test_the_policy_comes_from_the_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "sqlite://",
        recordings={"verify_delay_s": 30, "recheck_tries": 2, "recheck_first_minutes": 15},
    )
    policy = Policy.from_settings(settings)
    assert (policy.delay, policy.recheck_tries, policy.recheck_first) == (
        timedelta(seconds=30),
        2,
        timedelta(minutes=15),
    )
    assert policy.next_check(2, FIXED_NOW) == FIXED_NOW + timedelta(minutes=30)
    assert policy.next_check(3, FIXED_NOW) is None
