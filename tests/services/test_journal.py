"""The recorder's writer: group commit, spool on outage, a refused report isolated, drained on close."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.models import Call
from callcenter.services.calls import CallSeen, Entry
from callcenter.services.journal import Recorder, Spool


class GatedDatabase:
    """The real database behind a gate: the writer waits at ``transaction()`` until it opens.

    Counts the transactions (batches) and can play an outage (OperationalError at BEGIN).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.transactions = 0
        self.down = False

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        self.transactions += 1
        if self.down:
            raise OperationalError("BEGIN IMMEDIATE", {}, ConnectionRefusedError("database is down"))
        with self.db.transaction() as session:
            yield session


def report(now: datetime, name: str, *, channel: str = "asterisk") -> tuple[CallSeen, list[Entry]]:
    seen = CallSeen(channel=channel, external_id=name, at=now, from_raw="13800138000")
    return seen, [Entry(f"agi:{name}:0", "ivr.node", now, "agi", "welcome", 0, {"type": "play"})]


def calls_by_key(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {key: call_id for key, call_id in session.execute(select(Call.external_id, Call.id))}


@pytest.fixture
def gated(db: Database) -> GatedDatabase:
    return GatedDatabase(db)


@pytest.fixture
def recorder(gated: GatedDatabase, tmp_path: Path, now: datetime) -> Iterator[Recorder]:
    recorder = Recorder(cast(Database, gated), Spool(tmp_path / "spool"), region="CN", clock=lambda: now)
    yield recorder
    gated.gate.set()
    recorder.close()


def hold_the_writer(gated: GatedDatabase, recorder: Recorder, now: datetime) -> None:
    """Close the gate and park the writer on a first report, so later ones queue up as one batch."""
    gated.gate.clear()
    gated.entered.clear()
    recorder.submit(*report(now, "first"))
    assert gated.entered.wait(5)


def test_reports_queued_while_the_writer_is_busy_go_in_one_transaction(
    gated: GatedDatabase, recorder: Recorder, db: Database, now: datetime
) -> None:
    hold_the_writer(gated, recorder, now)
    with ThreadPoolExecutor(max_workers=5) as pool:
        waiting = [pool.submit(recorder.record, *report(now, f"call-{index}")) for index in range(5)]
        for index in range(5, 10):
            recorder.submit(*report(now, f"call-{index}"))
        time.sleep(0.2)  # let the five callers queue their reports
        gated.gate.set()
        ids = [future.result(timeout=10) for future in waiting]
    recorder.close()
    stored = calls_by_key(db)
    assert ids == [stored[f"call-{index}"] for index in range(5)]
    assert set(stored) == {"first", *(f"call-{index}" for index in range(10))}
    assert gated.transactions == 2  # the first report, then the ten that queued behind it


def test_concurrent_callers_each_get_their_own_call_id(
    recorder: Recorder, db: Database, now: datetime
) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(lambda index: recorder.record(*report(now, f"c{index}")), range(60)))
    stored = calls_by_key(db)
    assert ids == [stored[f"c{index}"] for index in range(60)]
    assert len(set(ids)) == 60


def test_a_failing_batch_is_spooled_report_by_report(
    gated: GatedDatabase, recorder: Recorder, tmp_path: Path, db: Database, now: datetime
) -> None:
    hold_the_writer(gated, recorder, now)
    gated.down = True
    with ThreadPoolExecutor(max_workers=3) as pool:
        waiting = [pool.submit(recorder.record, *report(now, f"down-{index}")) for index in range(3)]
        recorder.submit(*report(now, "down-3"))
        time.sleep(0.2)
        gated.gate.set()
        assert [future.result(timeout=10) for future in waiting] == [None, None, None]
    recorder.close()
    spool = Spool(tmp_path / "spool")
    assert len(spool.pending()) == 5  # the first report and the batch of four: every one kept
    assert gated.transactions == 2  # an outage is not retried report by report
    gated.down = False
    result = Recorder(db, spool, region="CN", clock=lambda: now).replay()
    assert (result.applied, result.failed, result.remaining) == (5, 0, 0)
    assert set(calls_by_key(db)) == {"first", "down-0", "down-1", "down-2", "down-3"}


def test_a_report_the_database_refuses_is_isolated_and_the_rest_of_the_batch_applies(
    gated: GatedDatabase, recorder: Recorder, tmp_path: Path, db: Database, now: datetime
) -> None:
    hold_the_writer(gated, recorder, now)
    with ThreadPoolExecutor(max_workers=3) as pool:
        good = pool.submit(recorder.record, *report(now, "good-0"))
        time.sleep(0.05)
        refused = pool.submit(recorder.record, *report(now, "bad", channel=None))  # type: ignore[arg-type]
        time.sleep(0.05)
        later = pool.submit(recorder.record, *report(now, "good-1"))
        time.sleep(0.2)
        gated.gate.set()
        results = good.result(timeout=10), refused.result(timeout=10), later.result(timeout=10)
    recorder.close()
    stored = calls_by_key(db)
    assert results == (stored["good-0"], None, stored["good-1"])
    assert set(stored) == {"first", "good-0", "good-1"}
    assert gated.transactions == 1 + 1 + 3  # first; the batch that failed; each of its three alone
    assert len(Spool(tmp_path / "spool").pending()) == 1  # only the refused report


def test_close_writes_every_report_handed_over_before_it_returns(
    gated: GatedDatabase, recorder: Recorder, db: Database, now: datetime
) -> None:
    hold_the_writer(gated, recorder, now)
    for index in range(20):
        recorder.submit(*report(now, f"late-{index}"))
    closer = threading.Thread(target=recorder.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # waiting for the writer
    gated.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert len(calls_by_key(db)) == 21
    # After close, reports are written in the caller's thread.
    call_id = recorder.record(*report(now, "after-close"))
    assert call_id == calls_by_key(db)["after-close"]


def test_a_caller_that_times_out_leaves_its_report_queued(
    gated: GatedDatabase, db: Database, tmp_path: Path, now: datetime
) -> None:
    recorder = Recorder(
        cast(Database, gated), Spool(tmp_path / "spool"), region="CN", clock=lambda: now, timeout_s=0.1
    )
    hold_the_writer(gated, recorder, now)
    assert recorder.record(*report(now, "slow")) is None
    gated.gate.set()
    recorder.close()
    assert "slow" in calls_by_key(db)


def test_both_reports_of_one_call_in_one_batch_agree_with_writing_them_apart(
    gated: GatedDatabase, recorder: Recorder, db: Database, now: datetime
) -> None:
    def reports(name: str) -> list[tuple[CallSeen, list[Entry]]]:
        seen = CallSeen(channel="asterisk", external_id=name, at=now, from_raw="13800138000")
        route = {"queue": "complaint", "branch": "complaint", "priority": 0}
        return [
            (seen, [Entry(f"agi:{name}:0", "ivr.node", now, "agi", "welcome", 0, {"type": "play"})]),
            (seen, [Entry(f"agi:{name}:1", "ivr.route", now, "agi", "route_complaint", 1, route)]),
        ]

    for seen, entries in reports("apart"):
        recorder.record(seen, entries)
    hold_the_writer(gated, recorder, now)
    arrival, final = reports("together")
    recorder.submit(*arrival)
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(recorder.record, *final)
        time.sleep(0.2)
        gated.gate.set()
        call_id = waiting.result(timeout=10)
    recorder.close()
    assert gated.transactions == 2 + 2  # the two apart, the held first report, then both together
    columns = ("disposition", "ivr_path", "ivr_branch", "queue_name", "queue_id", "caller_id", "started_at")
    with db.read() as session:
        apart, together = (
            session.execute(select(Call).where(Call.external_id == name)).scalar_one()
            for name in ("apart", "together")
        )
        assert together.id == call_id
        assert [getattr(together, column) for column in columns] == [
            getattr(apart, column) for column in columns
        ]
        assert together.disposition == "queued" and together.caller_id is not None


def test_a_full_queue_holds_senders_back_and_loses_nothing(
    gated: GatedDatabase, tmp_path: Path, now: datetime, db: Database
) -> None:
    recorder = Recorder(
        cast(Database, gated), Spool(tmp_path / "spool"), region="CN", clock=lambda: now, max_queued=3
    )
    hold_the_writer(gated, recorder, now)
    for name in ("q1", "q2", "q3"):
        recorder.submit(*report(now, name))
    blocked = threading.Thread(target=recorder.submit, args=report(now, "q4"))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # no room until the writer takes a batch
    gated.gate.set()
    blocked.join(5)
    assert not blocked.is_alive()
    assert recorder.flush()
    recorder.close()
    assert {"q1", "q2", "q3", "q4"} <= set(calls_by_key(db))


def test_fire_and_forget_reports_gather_for_the_linger_and_a_waiting_caller_cuts_it_short(
    gated: GatedDatabase, tmp_path: Path, db: Database, now: datetime
) -> None:
    recorder = Recorder(
        cast(Database, gated), Spool(tmp_path / "spool"), region="CN", clock=lambda: now, linger_s=0.5
    )
    try:
        for index in range(3):
            recorder.submit(*report(now, f"quiet-{index}"))
        time.sleep(0.1)
        assert gated.transactions == 0  # still gathering
        started = time.monotonic()
        call_id = recorder.record(*report(now, "waiting"))
        assert time.monotonic() - started < 0.4  # the caller did not wait out the linger
        assert call_id == calls_by_key(db)["waiting"]
        assert gated.transactions == 1  # the three quiet reports went with it
        recorder.submit(*report(now, "last"))
        started = time.monotonic()
        assert recorder.flush(5) and "last" in calls_by_key(db)
        assert time.monotonic() - started < 0.4  # flush does not wait out the linger either
    finally:
        recorder.close()
    assert set(calls_by_key(db)) == {"quiet-0", "quiet-1", "quiet-2", "waiting", "last"}


def test_a_report_with_a_nul_is_stored_cleaned_and_noted_never_set_aside(
    db: Database, tmp_path: Path, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL refuses a NUL in a text column: the report would fail whole and end in the spool's
    ``.failed``. The call is kept instead, without the control characters, with a note of where."""
    spool = Spool(tmp_path / "spool")
    recorder = Recorder(db, spool, region="CN", clock=lambda: now)
    seen = CallSeen(
        channel="asterisk",
        external_id="1796.7",
        at=now,
        from_raw="+86138\x000013\x078000",
        caller_name="张\x00三",
    )
    entry = Entry(
        "agi:1796.8:6@in:0", "ivr.node", now, "agi", node="wel\x00come", seq=0, data={"x": "a\x00b"}
    )
    call_id = recorder.record(seen, [entry])
    recorder.close()
    assert call_id is not None
    assert spool.pending() == [] and list((tmp_path / "spool").glob("*.failed")) == []
    with db.read() as session:
        call = session.get_one(Call, call_id)
        assert (call.from_e164, call.caller_name) == ("+8613800138000", "张三")
        kinds = {event.kind: event for event in call.events}
        assert kinds["ivr.node"].node == "welcome"
        assert kinds["record.cleaned"].data == {
            "fields": ["from_raw", "caller_name", "entry 'agi:1796.8:6@in:0'"]
        }
    assert "control characters removed from from_raw, caller_name" in caplog.text
