"""The monthly QA report: averages, t intervals, failed items, trend, teams; the report page."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from flask.testing import FlaskClient

from callcenter.db import Database
from callcenter.models import QAEvaluation, QASample, QASampleRun
from callcenter.services import qa_scorecards
from callcenter.services.qa_reports import confidence_interval, monthly_report, t_quantile
from tests.qa.factories import make_agent, make_recorded_call, make_staff
from tests.qa.test_sampling import ZONE
from tests.web.factories import PASSWORD, Account, login, logout


@pytest.mark.parametrize(
    ("df", "printed"), [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (120, 1.980)]
)
def test_t_quantiles_match_printed_tables(df: int, printed: float) -> None:
    assert round(t_quantile(0.975, df), 3) == printed


def test_the_interval_is_mean_plus_minus_t_s_over_root_n() -> None:
    interval = confidence_interval([80.0, 90.0, 100.0], 0.95)
    assert interval is not None
    assert interval.half_width == round(4.302653 * 10 / math.sqrt(3), 2) == 24.84
    assert (interval.low, interval.high) == (65.16, 114.84)
    assert confidence_interval([90.0], 0.95) is None


def _scores(db: Database, now: datetime) -> None:
    """Oct: 甲 70. Nov: 甲 80, 90, 100 (the 100 replaced a 50 on re-score; a calibration 10 is
    ignored); 乙 (team 二组) 60 with a failed critical item."""
    with db.transaction() as s:
        card = qa_scorecards.ensure_default(s, now=now)
        a = make_agent(s, "甲", team="一组", now=now)
        b = make_agent(s, "乙", team="二组", now=now)
        run = QASampleRun(
            period_start=date(2026, 10, 1), period_end=date(2026, 12, 1), seed=1, created_at=now
        )
        s.add(run)
        s.flush()

        def sample(agent_id: int, day: date) -> QASample:
            call = make_recorded_call(
                s,
                agent_id=agent_id,
                queue="consultation",
                start=datetime(day.year, day.month, day.day, 10, tzinfo=ZONE),
            )
            row = QASample(
                run_id=run.id,
                call_id=call.id,
                recording_id=call.recordings[0].id,
                agent_id=agent_id,
                reasons=["random"],
                created_at=now,
            )
            s.add(row)
            s.flush()
            return row

        def evaluation(
            row: QASample,
            total: float,
            purpose: str = "review",
            version: int = 1,
            failed: tuple[str, ...] = (),
            critical: bool = False,
        ) -> None:
            s.add(
                QAEvaluation(
                    sample_id=row.id,
                    scorecard_id=card.id,
                    purpose=purpose,
                    version=version,
                    total=total,
                    failed_items=list(failed),
                    critical_failed=critical,
                    created_at=now,
                )
            )

        evaluation(sample(a.id, date(2026, 10, 20)), 70)
        evaluation(sample(a.id, date(2026, 11, 2)), 80, failed=("politeness",))
        evaluation(sample(a.id, date(2026, 11, 3)), 90, failed=("politeness", "mandarin"))
        disputed = sample(a.id, date(2026, 11, 4))
        evaluation(disputed, 50)
        evaluation(disputed, 100, purpose="rescore", version=2)
        evaluation(disputed, 10, purpose="calibration")
        evaluation(sample(b.id, date(2026, 11, 5)), 0, failed=("no_rudeness",), critical=True)
        evaluation(sample(b.id, date(2026, 11, 30)), 60)
        evaluation(sample(b.id, date(2026, 12, 1)), 99)  # next month (Shanghai time)


def test_monthly_report_per_agent_and_team(db: Database, now: datetime) -> None:
    _scores(db, now)
    with db.read() as s:
        report = monthly_report(s, date(2026, 11, 15), ZONE, 0.95)
    agents = {g.name: g for g in report.agents}
    jia, yi = agents["甲"], agents["乙"]
    assert (jia.count, jia.mean, jia.previous_mean, jia.trend) == (3, 90.0, 70.0, 20.0)
    assert jia.failed_items == {"politeness": 2, "mandarin": 1}
    assert jia.interval(0.95) is not None and jia.interval(0.95).half_width == 24.84  # type: ignore[union-attr]
    assert (yi.count, yi.mean, yi.critical_failed, yi.previous_mean, yi.trend) == (2, 30.0, 1, None, None)
    assert [(t.key, t.count, t.mean) for t in report.teams] == [("一组", 3, 90.0), ("二组", 2, 30.0)]
    assert (report.overall.count, report.overall.mean, report.overall.trend) == (5, 66.0, -4.0)


@pytest.fixture
def leader(db: Database, now: datetime) -> Account:
    return Account(make_staff(db, now, "lead", ("team_leader",), PASSWORD), "lead", PASSWORD)


def test_the_report_page(client: FlaskClient, db: Database, now: datetime, leader: Account) -> None:
    _scores(db, now)
    login(client, leader)
    page = client.get("/qa/reports?month=2026-11").get_data(as_text=True)
    assert "2026-11" in page and "65.16 – 114.84 (± 24.84)" in page and "+20.00" in page
    assert client.get("/qa/reports?month=garbage").status_code == 200
    logout(client)
    agent = Account(make_staff(db, now, "someone", ("agent_consultation",), PASSWORD), "someone", PASSWORD)
    login(client, agent)
    assert client.get("/qa/reports").status_code == 403
