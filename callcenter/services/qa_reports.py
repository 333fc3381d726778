"""The monthly QA report (REQUIREMENTS E55, H70): per agent and per team, the average score with its
confidence interval, failed items, and the trend against the month before.

**Which scores.** Samples whose call started in the month (local time); each counts once, with its
current score (the latest review or re-score; calibration scores are left out).

**Interval.** For n scores with mean x̄ and sample standard deviation s::

    x̄ ± t(1 − α/2, n − 1) · s / √n

the Student-t interval (scores of a few calls, unknown spread). It needs n ≥ 2; with one score there
is no interval. scipy is not a dependency, so ``t_quantile`` inverts the t distribution's CDF by
Newton's method, the CDF being 0.5 + the integral of the density (``math.lgamma``) by Simpson's rule; it
agrees with printed t tables to 3 decimals (tests check df 1, 2, 4, 9, 29 and 120). A table alone
would cover only the levels printed in it; the confidence level is a setting.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Agent, Call, QAEvaluation, QAResponse, QASample
from callcenter.services.qa_reviews import SCORED_PURPOSES
from callcenter.services.qa_sampling import period_bounds

SIMPSON_STEPS = 1000


def _t_density(x: float, df: int) -> float:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))


def t_cdf(x: float, df: int) -> float:
    """P(T ≤ x) for Student's t with ``df`` degrees of freedom (x ≥ 0), by Simpson's rule."""
    if x == 0:
        return 0.5
    h = x / SIMPSON_STEPS
    total = _t_density(0, df) + _t_density(x, df)
    for i in range(1, SIMPSON_STEPS):
        total += (4 if i % 2 else 2) * _t_density(i * h, df)
    return 0.5 + total * h / 3


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The t value with P(T ≤ t) = p (p in (0.5, 1)): Newton's method on ``t_cdf`` from the normal
    quantile. The CDF is concave above 0, so the steps climb to the root from below."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError("need 0.5 < p < 1 and df ≥ 1")
    x = statistics.NormalDist().inv_cdf(p)
    for _ in range(100):
        step = (t_cdf(x, df) - p) / _t_density(x, df)
        x -= step
        if abs(step) < 1e-10:
            break
    return x


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    half_width: float


def confidence_interval(scores: list[float], confidence: float) -> Interval | None:
    """x̄ ± t(1 − α/2, n − 1)·s/√n; None for fewer than two scores."""
    n = len(scores)
    if n < 2:
        return None
    mean = statistics.fmean(scores)
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * statistics.stdev(scores) / math.sqrt(n)
    return Interval(round(mean - half, 2), round(mean + half, 2), round(half, 2))


@dataclass
class Group:
    """One agent's or team's month."""

    key: str
    name: str
    team: str = ""
    scores: list[float] = field(default_factory=list)
    failed_items: Counter[str] = field(default_factory=Counter)
    critical_failed: int = 0
    with_suggestions: int = 0
    acknowledged: int = 0
    disputed: int = 0
    previous_mean: float | None = None

    @property
    def count(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float | None:
        return round(statistics.fmean(self.scores), 2) if self.scores else None

    @property
    def trend(self) -> float | None:
        if self.mean is None or self.previous_mean is None:
            return None
        return round(self.mean - self.previous_mean, 2)

    def interval(self, confidence: float) -> Interval | None:
        return confidence_interval(self.scores, confidence)


@dataclass(frozen=True)
class Scored:
    agent_id: int | None
    agent_name: str
    team: str
    total: float
    failed_items: tuple[str, ...]
    critical_failed: bool
    has_suggestions: bool
    acknowledged: bool
    disputed: bool


@dataclass(frozen=True)
class MonthReport:
    month: date
    previous: date
    confidence: float
    agents: list[Group]
    teams: list[Group]
    overall: Group


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month(first: date) -> date:
    return (first.replace(day=1) - date.resolution).replace(day=1)


def next_month(first: date) -> date:
    return (first.replace(day=28) + 4 * date.resolution).replace(day=1)


def scored_in(session: Session, first: date, zone: ZoneInfo) -> list[Scored]:
    """The current score of every sample whose call started in the month of ``first``."""
    start, end = period_bounds(first, next_month(first), zone)
    rows = session.execute(
        select(QAEvaluation, QASample.agent_id, Agent.name, Agent.team)
        .join(QASample, QASample.id == QAEvaluation.sample_id)
        .join(Call, Call.id == QASample.call_id)
        .outerjoin(Agent, Agent.id == QASample.agent_id)
        .where(
            Call.started_at >= start,
            Call.started_at < end,
            QAEvaluation.purpose.in_(SCORED_PURPOSES),
        )
        .order_by(QAEvaluation.sample_id, QAEvaluation.version.desc(), QAEvaluation.id.desc())
    ).all()
    responses: dict[int, set[str]] = defaultdict(set)
    ids = [row[0].id for row in rows]
    if ids:
        for evaluation_id, kind in session.execute(
            select(QAResponse.evaluation_id, QAResponse.kind).where(QAResponse.evaluation_id.in_(ids))
        ):
            responses[evaluation_id].add(kind)
    seen: set[int] = set()
    result: list[Scored] = []
    for evaluation, agent_id, name, team in rows:
        if evaluation.sample_id in seen:
            continue
        seen.add(evaluation.sample_id)
        kinds = responses[evaluation.id]
        result.append(
            Scored(
                agent_id=agent_id,
                agent_name=name or "",
                team=team or "",
                total=evaluation.total,
                failed_items=tuple(evaluation.failed_items or ()),
                critical_failed=evaluation.critical_failed,
                has_suggestions=bool(evaluation.suggestions),
                acknowledged="acknowledge" in kinds,
                disputed="dispute" in kinds,
            )
        )
    return result


def _add(group: Group, item: Scored) -> None:
    group.scores.append(item.total)
    group.failed_items.update(item.failed_items)
    group.critical_failed += item.critical_failed
    group.with_suggestions += item.has_suggestions
    group.acknowledged += item.acknowledged
    group.disputed += item.disputed


def _group(items: list[Scored]) -> tuple[dict[str, Group], dict[str, Group], Group]:
    agents: dict[str, Group] = {}
    teams: dict[str, Group] = {}
    overall = Group("all", "")
    for item in items:
        agent_key = str(item.agent_id or 0)
        agent = agents.setdefault(agent_key, Group(agent_key, item.agent_name, item.team))
        team = teams.setdefault(item.team, Group(item.team, item.team))
        for group in (agent, team, overall):
            _add(group, item)
    return agents, teams, overall


def monthly_report(session: Session, first: date, zone: ZoneInfo, confidence: float) -> MonthReport:
    first = month_start(first)
    before = previous_month(first)
    agents, teams, overall = _group(scored_in(session, first, zone))
    old_agents, old_teams, old_overall = _group(scored_in(session, before, zone))
    for key, group in agents.items():
        group.previous_mean = old_agents[key].mean if key in old_agents else None
    for key, group in teams.items():
        group.previous_mean = old_teams[key].mean if key in old_teams else None
    overall.previous_mean = old_overall.mean
    return MonthReport(
        month=first,
        previous=before,
        confidence=confidence,
        agents=sorted(agents.values(), key=lambda g: (g.team, g.name, g.key)),
        teams=sorted(teams.values(), key=lambda g: g.key),
        overall=overall,
    )
