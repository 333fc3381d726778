"""The QA draw as the scheduler and the command line run it: one period, drawn once, then assigned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from callcenter.db import Database
from callcenter.services import qa_scorecards
from callcenter.services.qa_assignment import assign_pending
from callcenter.services.qa_sampling import SamplingParams, day_to_draw, draw
from callcenter.settings import Settings


@dataclass(frozen=True)
class DrawOutcome:
    run_id: int
    created: bool
    start: date
    end: date
    population: int
    sampled: int
    assigned: int

    def __str__(self) -> str:
        state = "drawn" if self.created else "already drawn"
        return (
            f"run {self.run_id} {self.start}..{self.end} {state}: {self.sampled} of {self.population}"
            f" calls sampled, {self.assigned} assigned"
        )


def draw_period(
    settings: Settings,
    db: Database,
    now: datetime,
    *,
    start: date,
    end: date,
    seed: int | None = None,
    trigger: str = "job",
) -> DrawOutcome:
    """Draw ``[start, end)`` (local days) unless drawn, then hand out unassigned samples."""
    params = SamplingParams.from_settings(settings.qa)
    with db.transaction() as session:
        qa_scorecards.ensure_default(session, now=now)
        result = draw(
            session,
            start=start,
            end=end,
            params=params,
            zone=settings.zone,
            now=now,
            seed=seed,
            trigger=trigger,
        )
    with db.transaction() as session:
        assigned = assign_pending(session, now=now, zone=settings.zone, cap=settings.qa.evaluator_daily_cap)
    return DrawOutcome(result.run_id, result.created, start, end, result.population, result.sampled, assigned)


def daily_draw(settings: Settings, db: Database, now: datetime) -> DrawOutcome:
    """The scheduler's job: the day that ended ``lag_days`` ago."""
    day = day_to_draw(now, settings.zone, settings.qa.lag_days)
    return draw_period(settings, db, now, start=day, end=day + timedelta(days=1))
