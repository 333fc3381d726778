"""The scheduler job that sweeps cases every minute: delayed marks and promised-reply warnings."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Case, Notice
from callcenter.services import cases
from scheduler import jobs
from tests.conftest import make_settings
from tests.services.case_helpers import complaint, person, policy


def test_the_sweep_job_marks_and_warns_once(db: Database, tmp_path: Path, now: datetime) -> None:
    settings = make_settings(tmp_path, db.url)
    with db.transaction() as session:
        agent = person(session, "agent", "agent_complaint", now=now)
        case = cases.register_case(session, complaint(), user=agent, policy=policy(settings), now=now)
        due = case.resolution_due_at
        cases.promise_reply(session, case.id, at=due + timedelta(minutes=21), user=agent, now=now)
    assert jobs.JOBS["sweep_cases"].seconds == 60
    later = due + timedelta(minutes=1)  # past the deadline, 20 minutes before the promise
    jobs.bind(jobs.Runtime(settings=settings, db=db, clock=lambda: later))
    assert jobs.run("sweep_cases") == cases.SweepResult(delayed=1, first_reply_overdue=1, warnings=1)
    assert jobs.run("sweep_cases") == cases.SweepResult()
    with db.read() as session:
        assert session.execute(select(Case.delayed)).scalar_one() is True
        assert session.execute(select(Notice.kind)).scalars().all() == ["promise_due_soon"]
