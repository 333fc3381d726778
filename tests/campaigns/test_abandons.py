"""Queue abandons (A9): the sweep gives each caller who hung up waiting in a queue one missed-call
callback in that queue, unless the number called again or reached an agent since. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callcenter.db import Database
from callcenter.ivr.hours import business_hours
from callcenter.models import Call, CallbackTask
from callcenter.services import callbacks
from scheduler import jobs
from tests.campaigns.conftest import Clock
from tests.conftest import make_settings

NUMBER = "+8613800138000"
OTHER = "+8613800138001"


def add_call(
    db: Database,
    external_id: str,
    started: datetime,
    disposition: str,
    *,
    number: str | None = NUMBER,
    direction: str = "inbound",
    queue: str | None = "complaint",
    answered: bool = False,
) -> int:
    with db.transaction() as session:
        call = Call(
            channel="asterisk",
            external_id=external_id,
            direction=direction,
            from_raw=(number or "anonymous") if direction == "inbound" else "4008123123",
            from_e164=number if direction == "inbound" else "+864008123123",
            to_e164=number if direction == "outbound" else "+864008123123",
            created_at=started,
            started_at=started,
            answered_at=started + timedelta(seconds=10) if answered else None,
            ended_at=started + timedelta(seconds=60),
            queue_name=queue,
            disposition=disposition,
        )
        session.add(call)
        session.flush()
        return call.id


def sweep(db: Database, tmp_path: Path, now: datetime) -> callbacks.AbandonSweep:
    hours = business_hours(make_settings(tmp_path, db.url))
    with db.transaction() as session:
        return callbacks.sweep_abandoned(session, now, hours=hours)


def tasks(db: Database) -> list[CallbackTask]:
    with db.read() as session:
        return list(session.execute(select(CallbackTask).order_by(CallbackTask.id)).scalars())


def test_one_missed_call_task_in_the_calls_queue_and_reruns_add_nothing(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    now = clock()  # 10:00 in Shanghai on a Monday: open
    call_id = add_call(db, "a1", now - timedelta(minutes=10), "abandoned_in_queue", queue="complaint")
    add_call(db, "t1", now - timedelta(minutes=10), "queue_timeout", number=OTHER)  # the IVR's own task
    add_call(db, "o1", now - timedelta(minutes=10), "abandoned_in_queue", direction="outbound", number=OTHER)
    assert sweep(db, tmp_path, now) == callbacks.AbandonSweep(created=1)
    assert sweep(db, tmp_path, now) == callbacks.AbandonSweep()
    assert sweep(db, tmp_path, now + timedelta(hours=1)) == callbacks.AbandonSweep()
    [task] = tasks(db)
    assert (task.kind, task.status, task.call_id, task.queue_name) == (
        "missed_call",
        "pending",
        call_id,
        "complaint",
    )
    assert (task.number_e164, task.due_at, task.key) == (NUMBER, now, "asterisk:a1:queue-abandon")


def test_due_at_the_next_opening_when_closed(db: Database, tmp_path: Path) -> None:
    night = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai: closed until 06:00
    add_call(db, "a1", night - timedelta(minutes=5), "abandoned_in_queue", queue="consultation")
    assert sweep(db, tmp_path, night).created == 1
    [task] = tasks(db)
    assert task.due_at == datetime(2026, 11, 23, 22, 0, tzinfo=UTC) and task.queue_name == "consultation"


def test_a_number_that_called_again_or_reached_an_agent_is_skipped(
    db: Database, tmp_path: Path, clock: Clock
) -> None:
    now = clock()
    add_call(db, "a1", now - timedelta(minutes=30), "abandoned_in_queue")
    add_call(db, "a2", now - timedelta(minutes=20), "in_ivr")  # called again (not even answered)
    add_call(db, "b1", now - timedelta(minutes=30), "abandoned_in_queue", number=OTHER)
    add_call(
        db, "b2", now - timedelta(minutes=20), "answered", number=OTHER, direction="outbound", answered=True
    )
    add_call(db, "c1", now - timedelta(minutes=30), "abandoned_in_queue", number="+8613800138002")
    add_call(  # an outbound call before the abandon does not count
        db,
        "c0",
        now - timedelta(minutes=40),
        "answered",
        number="+8613800138002",
        direction="outbound",
        answered=True,
    )
    assert sweep(db, tmp_path, now).created == 1
    assert [task.number_e164 for task in tasks(db)] == ["+8613800138002"]


def test_the_latest_abandon_of_a_number_is_called_back(db: Database, tmp_path: Path, clock: Clock) -> None:
    now = clock()
    add_call(db, "a1", now - timedelta(minutes=30), "abandoned_in_queue", queue="consultation")
    latest = add_call(db, "a2", now - timedelta(minutes=20), "abandoned_in_queue", queue="complaint")
    assert sweep(db, tmp_path, now).created == 1
    [task] = tasks(db)
    assert (task.call_id, task.queue_name) == (latest, "complaint")


def test_grace_lookback_and_withheld_numbers(db: Database, tmp_path: Path, clock: Clock) -> None:
    now = clock()
    add_call(db, "fresh", now - timedelta(seconds=61), "abandoned_in_queue")  # ended just now: wait
    add_call(db, "old", now - timedelta(days=2), "abandoned_in_queue", number=OTHER)  # out of the lookback
    add_call(db, "anon", now - timedelta(minutes=10), "abandoned_in_queue", number=None)
    assert sweep(db, tmp_path, now).created == 1
    [withheld] = tasks(db)
    assert (withheld.status, withheld.note) == ("unreachable", "no callable number: anonymous")
    assert sweep(db, tmp_path, now + timedelta(minutes=2)).created == 1
    assert [task.number_e164 for task in tasks(db)] == [None, NUMBER]


def test_the_scheduler_job(db: Database, tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(tmp_path, db.url, dialler={"abandon_grace_minutes": 0})
    add_call(db, "a1", clock() - timedelta(seconds=61), "abandoned_in_queue")
    assert jobs.JOBS["sweep_queue_abandons"].seconds == 60
    jobs.bind(jobs.Runtime(settings=settings, db=db, clock=clock))
    assert jobs.run("sweep_queue_abandons") == callbacks.AbandonSweep(created=1)
    assert jobs.run("sweep_queue_abandons") == callbacks.AbandonSweep()
    assert len(tasks(db)) == 1
