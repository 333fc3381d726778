"""The daily scheduler job and ``callcenter qa draw|redraw``: each period drawn once, reproducibly."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from callcenter.cli import cli
from callcenter.db import Database
from callcenter.models import QAAssignment, QASample, QASampleRun
from callcenter.services.qa_jobs import DrawOutcome
from scheduler import jobs
from tests.conftest import ROOT, make_settings
from tests.qa.factories import make_agent, make_recorded_call, make_staff
from tests.qa.test_sampling import DAY, at
from tests.web.factories import PASSWORD


def _calls(db: Database, now: datetime) -> None:
    make_staff(db, now, "qa1", ("qa",), PASSWORD)
    with db.transaction() as s:
        agents = [make_agent(s, f"a{i}", now=now) for i in range(3)]
        for n in range(12):
            make_recorded_call(
                s, agent_id=agents[n % 3].id, queue="consultation", start=at(9) + timedelta(minutes=n)
            )
            make_recorded_call(
                s, agent_id=agents[n % 3].id, queue="complaint", start=at(9, DAY - timedelta(days=1))
            )


def test_the_daily_job_draws_yesterday_once_and_assigns_it(
    db: Database, tmp_path: Path, now: datetime
) -> None:
    _calls(db, now)
    settings = make_settings(tmp_path, db.url)
    assert "draw_qa_sample" in jobs.JOBS
    jobs.bind(jobs.Runtime(settings=settings, db=db, clock=lambda: now))
    first = jobs.run("draw_qa_sample")
    again = jobs.run("draw_qa_sample")
    assert isinstance(first, DrawOutcome) and isinstance(again, DrawOutcome)
    assert (first.created, first.start, first.population, first.sampled, first.assigned) == (
        True,
        DAY,
        12,
        3,
        3,
    )
    assert (again.created, again.run_id, again.assigned) == (False, first.run_id, 0)
    with db.read() as s:
        assert s.execute(select(func.count()).select_from(QASample)).scalar_one() == 3
        assert s.execute(select(func.count()).select_from(QAAssignment)).scalar_one() == 3


@pytest.fixture
def env(tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_SETTINGS", str(ROOT / "settings.toml"))
    monkeypatch.setenv("CALLCENTER_DATABASE__URL", db.url)
    monkeypatch.setenv("CALLCENTER_STORAGE__VAR_DIR", str(tmp_path / "var"))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), obj={}, catch_exceptions=False)
    return result.exit_code, result.output


def test_the_command_draws_a_chosen_period_with_a_seed_and_redraws_it(
    env: None, db: Database, now: datetime
) -> None:
    _calls(db, now)
    period = ("--from", str(DAY - timedelta(days=1)), "--to", str(DAY))
    code, output = invoke("qa", "draw", *period, "--seed", "2026")
    assert code == 0 and "drawn: 6 of 24 calls sampled, 6 assigned" in output  # 3 agents × 2 queues
    code, output = invoke("qa", "draw", *period)
    assert code == 0 and "already drawn" in output
    with db.read() as s:
        run = s.execute(select(QASampleRun)).scalar_one()
        assert run.seed == 2026 and run.trigger == "cli"
        assert s.execute(select(func.count()).select_from(QASample)).scalar_one() == 6
    code, output = invoke("qa", "redraw", str(run.id))
    assert code == 0 and "same sample: True" in output
    assert invoke("qa", "draw", "--from", "2026-11-22", "--to", "2026-11-21")[0] != 0
