"""Sampling: strata, quotas, the per-agent minimum, oversampling, exclusions, reproducibility,
idempotent periods, and the PostgreSQL ranking agreeing with the Python reference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from callcenter.db import Database
from callcenter.models import Agent, QASample, QASampleRun
from callcenter.services import qa_sampling
from callcenter.services.qa_random import hash_int8
from callcenter.services.qa_sampling import (
    Candidate,
    SamplingParams,
    _complete,
    _ranked_postgres,
    allocate,
    candidates,
    day_to_draw,
    draw,
    period_bounds,
    rank,
    redraw,
    uniform,
)
from tests.conftest import _truncate
from tests.qa.factories import make_agent, make_recorded_call

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 22)  # the day before FIXED_NOW (Monday 10:00 in Shanghai)


def at(hour: int, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)


def population(agents: int, queues: tuple[str, ...], per: int) -> list[Candidate]:
    ids = iter(range(1, 100_000))
    return [
        Candidate(next(ids), 0, agent, queue, queue == "complaint", False)
        for agent in range(1, agents + 1)
        for queue in queues
        for _ in range(per)
    ]


def picked(params: SamplingParams, people: list[Candidate], seed: int) -> list[int]:
    return sorted(p.candidate.call_id for p in allocate(rank(people, seed, params), params))


def test_the_same_seed_gives_the_same_sample_and_another_seed_another() -> None:
    params = SamplingParams(per_stratum=3)
    people = population(5, ("consultation", "complaint"), 40)
    assert picked(params, people, 42) == picked(params, list(reversed(people)), 42)
    assert picked(params, people, 42) != picked(params, people, 43)


def test_count_mode_takes_per_stratum_from_each_agent_and_queue() -> None:
    params = SamplingParams(per_stratum=2)
    picks = allocate(rank(population(3, ("consultation", "complaint"), 10), 7, params), params)
    strata = Counter((p.candidate.agent_id, p.candidate.queue) for p in picks)
    assert strata == {(a, q): 2 for a in (1, 2, 3) for q in ("consultation", "complaint")}


def test_rate_mode_takes_the_floor_of_rate_times_size() -> None:
    params = SamplingParams(mode="rate", rate=0.1, min_per_agent=0)
    people = population(1, ("consultation",), 59) + population(1, ("complaint",), 20)
    picks = allocate(rank(people, 3, params), params)
    assert Counter(p.candidate.queue for p in picks) == {"consultation": 5, "complaint": 2}


def test_every_agent_gets_at_least_one_even_when_the_rate_rounds_to_zero() -> None:
    params = SamplingParams(mode="rate", rate=0.05, min_per_agent=1)
    big = population(1, ("consultation",), 100)  # agent 1: 5 by rate
    small = [Candidate(1000 + i, 0, 2, "complaint", True, False) for i in range(4)]  # agent 2: 0 by rate
    picks = allocate(rank(big + small, 11, params), params)
    by_agent = Counter(p.candidate.agent_id for p in picks)
    assert by_agent == {1: 5, 2: 1}
    assert [p.reasons for p in picks if p.candidate.agent_id == 2] == [("min_one", "complaint")]


def test_complaint_and_repeat_contact_calls_are_oversampled() -> None:
    params = SamplingParams(per_stratum=1, complaint_weight=2.0, repeat_contact_weight=3.0)
    plain, repeat = (
        Candidate(1, 0, 1, "consultation", False, False),
        Candidate(2, 0, 1, "consultation", False, True),
    )
    wins = sum(picked(params, [plain, repeat], seed) == [2] for seed in range(3000))
    assert 0.72 < wins / 3000 < 0.78  # weight 3 against 1: P = 3/4
    weights = {p.candidate.call_id: p.weight for p in allocate(rank([repeat], 1, params), params)}
    assert weights == {2: 3.0}


def test_the_generator_is_postgresqls_hashint8extended() -> None:
    # values printed by PostgreSQL 15: SELECT hashint8extended(v, seed) (signed 64-bit)
    for value, seed, printed in [
        (1, 0, -3670598878359251130),
        (12345, 2026, -9030686200406251564),
        (10_000_000_000, 2**62 - 1, -6589667152606685237),
    ]:
        assert hash_int8(value, seed) == printed % 2**64


def test_uniform_is_in_the_open_unit_interval_and_depends_on_seed_and_id_only() -> None:
    values = [uniform(5, call_id) for call_id in range(1, 2000)]
    assert all(0 < v < 1 for v in values)
    assert uniform(5, 17) == uniform(5, 17) != uniform(6, 17)
    assert 0.45 < sum(values) / len(values) < 0.55


def test_the_job_draws_yesterday_in_local_time(now: datetime) -> None:
    assert day_to_draw(now, ZONE, 1) == DAY
    first, last = period_bounds(DAY, DAY + timedelta(days=1), ZONE)
    assert (first.hour, last - first) == (16, timedelta(days=1))  # 00:00 Shanghai is 16:00 UTC


def test_a_thinned_ranking_is_complete_only_with_every_stratum_at_its_depth() -> None:
    def row(agent: int, depth: int, strata: int) -> SimpleNamespace:
        return SimpleNamespace(agent_id=agent, queue="q", depth=depth, n_strata=strata)

    assert _complete([row(1, 1, 2), row(2, 2, 2), row(2, 2, 2)])
    assert not _complete([row(1, 1, 2), row(2, 2, 2)])  # agent 2 short of its depth
    assert not _complete([row(1, 1, 2)])  # a stratum with no survivor at all
    assert not _complete([])


# --- on the database -----------------------------------------------------------------------------


def _seed_calls(db: Database, now: datetime) -> dict[str, int]:
    with db.transaction() as s:
        a, b, c = (make_agent(s, name, now=now) for name in ("甲", "乙", "丙"))
        ids = {
            "a1": make_recorded_call(s, agent_id=a.id, queue="consultation", start=at(9)).id,
            "a2": make_recorded_call(
                s, agent_id=a.id, queue="complaint", start=at(10), caller="+8613900139000"
            ).id,
            "a3": make_recorded_call(s, agent_id=a.id, queue="complaint", start=at(11), caller=None).id,
            "b1": make_recorded_call(
                s, agent_id=b.id, queue="consultation", start=at(12), caller="+8615000150000"
            ).id,
            # c has only calls that must be left out:
            "short": make_recorded_call(
                s, agent_id=c.id, queue="consultation", start=at(9), talk_s=29, caller=None
            ).id,
            "unrecorded": make_recorded_call(
                s, agent_id=c.id, queue="consultation", start=at(9), statuses=(), caller=None
            ).id,
            "missing": make_recorded_call(
                s,
                agent_id=c.id,
                queue="consultation",
                start=at(9),
                statuses=("verified", "missing"),
                caller=None,
            ).id,
            "pending": make_recorded_call(
                s, agent_id=c.id, queue="consultation", start=at(9), statuses=("pending",), caller=None
            ).id,
            # a header-only file (status empty) holds no audio to review, even beside a verified one
            "empty": make_recorded_call(
                s, agent_id=c.id, queue="consultation", start=at(9), statuses=("empty",), caller=None
            ).id,
            "empty_and_verified": make_recorded_call(
                s,
                agent_id=c.id,
                queue="consultation",
                start=at(9),
                statuses=("verified", "empty"),
                caller=None,
            ).id,
            "no_agent": make_recorded_call(
                s, agent_id=None, queue="consultation", start=at(9), caller=None
            ).id,
            "day_before": make_recorded_call(
                s, agent_id=c.id, queue="consultation", start=at(23, DAY - timedelta(days=1)), caller=None
            ).id,
            # the caller of b1 calls again 6 days later: b1 is followed by a repeat contact
            "later": make_recorded_call(
                s,
                agent_id=c.id,
                queue="consultation",
                start=at(9, DAY + timedelta(days=6)),
                caller="+8615000150000",
            ).id,
        }
    return ids


def test_population_leaves_out_short_unrecorded_missing_empty_and_other_days(
    db: Database, now: datetime
) -> None:
    ids = _seed_calls(db, now)
    first, last = period_bounds(DAY, DAY + timedelta(days=1), ZONE)
    with db.read() as s:
        found = {c.call_id: c for c in candidates(s, first, last, SamplingParams())}
    assert set(found) == {ids["a1"], ids["a2"], ids["a3"], ids["b1"]}
    assert found[ids["b1"]].repeat and not found[ids["a1"]].repeat
    assert found[ids["a2"]].complaint and not found[ids["b1"]].complaint
    assert not found[ids["a3"]].repeat  # no number, no repeat


def test_a_period_is_drawn_once_and_can_be_drawn_again_identically(db: Database, now: datetime) -> None:
    ids = _seed_calls(db, now)
    params = SamplingParams(per_stratum=1)
    with db.transaction() as s:
        first = draw(s, start=DAY, end=DAY + timedelta(days=1), params=params, zone=ZONE, now=now, seed=99)
    with db.transaction() as s:
        again = draw(s, start=DAY, end=DAY + timedelta(days=1), params=params, zone=ZONE, now=now, seed=5)
    assert first.created and not again.created and again.run_id == first.run_id
    with db.read() as s:
        samples = s.execute(select(QASample)).scalars().all()
        run = s.get(QASampleRun, first.run_id)
        assert run is not None
        assert (run.seed, run.population, run.sampled) == (99, 4, 3)
        assert run.params["per_stratum"] == 1 and run.params["algorithm"] == "es-lookup3-v1"
        check = redraw(s, first.run_id)
    # three strata (a×consultation, a×complaint, b×consultation); agent c has nothing to sample
    assert len(samples) == 3
    by_call = {x.call_id: x for x in samples}
    assert ids["b1"] in by_call and by_call[ids["b1"]].reasons == ["random", "repeat_contact"]
    assert by_call[ids["a1"]].reasons == ["random"]
    assert check.same_population and check.same_sample
    # an overlapping period never samples a call twice
    with db.transaction() as s:
        wider = draw(
            s,
            start=DAY - timedelta(days=1),
            end=DAY + timedelta(days=1),
            params=params,
            zone=ZONE,
            now=now,
            seed=1,
        )
        total = s.execute(select(func.count()).select_from(QASample)).scalar_one()
    assert wider.created and total == 3 + wider.sampled
    assert wider.sampled == 2  # the day before (agent c) and the one complaint call left


@pytest.fixture
def pg(postgresql_database: Database) -> Iterator[Database]:
    _truncate(postgresql_database)
    yield postgresql_database
    _truncate(postgresql_database)


@pytest.mark.postgresql
def test_postgresql_ranks_exactly_like_the_python_reference(
    pg: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = pg
    with db.transaction() as s:
        agents = [make_agent(s, f"agent{i}", now=now) for i in range(5)]
        far = Agent(id=10_000, name="far", team="B", created_at=now)  # strata far apart in ids
        s.add(far)
        s.flush()
        agents.append(far)
        for n in range(400):
            make_recorded_call(
                s,
                agent_id=agents[n % 6].id,
                queue=("consultation", "complaint")[n % 4 == 0],
                start=at(6) + timedelta(minutes=2 * n),
                caller=f"+86138001{n % 50:05d}",
            )
    first, last = period_bounds(DAY, DAY + timedelta(days=1), ZONE)
    for params in (SamplingParams(per_stratum=2), SamplingParams(mode="rate", rate=0.07, min_per_agent=2)):
        with db.read() as s:
            reference = rank(candidates(s, first, last, params), 1234, params)
        with db.transaction() as s:
            in_sql = _ranked_postgres(s, first, last, 1234, params, None)
        expected = [(p.candidate, p.reasons) for p in allocate(reference, params)]
        assert [(p.candidate, p.reasons) for p in allocate(in_sql, params)] == expected
        assert [(x.size, x.id_sum) for x in in_sql] == [(x.size, x.id_sum) for x in reference]
        for got, want in zip(in_sql, reference, strict=True):
            assert got.ranked == want.ranked[: params.depth(want.size)]
        # the fallback, every call ranked unthinned, gives the same
        monkeypatch.setattr(qa_sampling, "_complete", lambda rows: False)
        with db.transaction() as s:
            whole = _ranked_postgres(s, first, last, 1234, params, None)
        monkeypatch.undo()
        assert [(x.size, x.id_sum, x.ranked) for x in whole] == [(x.size, x.id_sum, x.ranked) for x in in_sql]
