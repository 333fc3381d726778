"""Drawing calls for QA review: stratified, weighted, reproducible (REQUIREMENTS E50–51).

**Population.** Calls of the period (``started_at`` in ``[start, end)`` local days) that were
answered by an agent, talked at least ``min_talk_s``, and whose call recordings are all verified
(at least one; a call with a pending, missing or invalid segment is left out: it cannot be judged
whole). Calls sampled before are left out, so overlapping periods never draw a call twice.

**Strata** are agent × queue. Each stratum gets a quota: ``per_stratum`` (mode ``count``) or
``floor(rate × size)`` (mode ``rate``), at most its size. An agent whose quotas add up to fewer
than ``min_per_agent`` gets the best-ranked of their remaining calls until they have that many.

**Random keys.** Every call gets ``u = (top 52 bits of lookup3(call id, seed) + ½) / 2⁵²`` — a
counter-based generator seeded by the run's seed (``qa_random``: PostgreSQL's own
``hashint8extended``) — and the weighted key ``u ** (1 / weight)``
(Efraimidis–Spirakis weighted sampling without replacement); a stratum takes its highest keys.
``weight`` is ``complaint_weight`` for complaint-queue calls times ``repeat_contact_weight`` for
calls followed by another call from the same number within ``repeat_contact_days``. The key of a
call depends only on the seed and its id, not on the order rows arrive in, which is what lets
PostgreSQL rank a million calls in SQL (``_ranked_postgres``) and give exactly the sample the pure
Python path (``rank``/``allocate``) gives on any database. Seed, parameters and a fingerprint of
the population are stored on the run: the same inputs give the same sample.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from callcenter.models import Call, QASample, QASampleRun, Recording
from callcenter.services.qa_random import UNIFORM_SQL, uniform
from callcenter.settings import QA

ALGORITHM = "es-lookup3-v1"


@dataclass(frozen=True)
class SamplingParams:
    """Everything besides the seed and the data that decides a sample; stored with the run."""

    mode: str = "count"
    per_stratum: int = 1
    rate: float = 0.05
    min_per_agent: int = 1
    min_talk_s: int = 30
    complaint_queues: tuple[str, ...] = ("complaint",)
    complaint_weight: float = 2.0
    repeat_contact_days: int = 7
    repeat_contact_weight: float = 2.0

    @classmethod
    def from_settings(cls, qa: QA) -> SamplingParams:
        return cls(
            mode=qa.mode,
            per_stratum=qa.per_stratum,
            rate=qa.rate,
            min_per_agent=qa.min_per_agent,
            min_talk_s=qa.min_talk_s,
            complaint_queues=tuple(qa.complaint_queues),
            complaint_weight=qa.complaint_weight,
            repeat_contact_days=qa.repeat_contact_days,
            repeat_contact_weight=qa.repeat_contact_weight,
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "complaint_queues": list(self.complaint_queues), "algorithm": ALGORITHM}

    def quota(self, size: int) -> int:
        wanted = self.per_stratum if self.mode == "count" else math.floor(self.rate * size)
        return min(wanted, size)

    def depth(self, size: int) -> int:
        """How many of a stratum's best keys can matter: its quota or the per-agent minimum."""
        return min(max(self.quota(size), self.min_per_agent, 1), size)

    def weight(self, complaint: bool, repeat: bool) -> float:
        weight = 1.0
        if complaint:
            weight *= self.complaint_weight
        if repeat:
            weight *= self.repeat_contact_weight
        return weight


@dataclass(frozen=True)
class Candidate:
    call_id: int
    recording_id: int
    agent_id: int
    queue: str
    complaint: bool
    repeat: bool


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    weight: float
    key: float


@dataclass
class Stratum:
    """One agent × queue: its size, a fingerprint of its calls, its best-ranked calls (key order)."""

    agent_id: int
    queue: str
    size: int = 0
    id_sum: int = 0
    id_min: int = 0
    id_max: int = 0
    ranked: list[Ranked] = field(default_factory=list)

    def fingerprint(self) -> str:
        return f"{self.agent_id}|{self.queue}|{self.size}|{self.id_sum}|{self.id_min}|{self.id_max}"


@dataclass(frozen=True)
class Pick:
    candidate: Candidate
    weight: float
    reasons: tuple[str, ...]


def rank(candidates: Iterable[Candidate], seed: int, params: SamplingParams) -> list[Stratum]:
    """Group candidates into strata, each ranked by weighted key (best first, then call id)."""
    strata: dict[tuple[int, str], Stratum] = {}
    for candidate in candidates:
        weight = params.weight(candidate.complaint, candidate.repeat)
        key = uniform(seed, candidate.call_id) ** (1.0 / weight)
        stratum = strata.setdefault(
            (candidate.agent_id, candidate.queue),
            Stratum(candidate.agent_id, candidate.queue, id_min=candidate.call_id),
        )
        stratum.size += 1
        stratum.id_sum += candidate.call_id
        stratum.id_min = min(stratum.id_min, candidate.call_id)
        stratum.id_max = max(stratum.id_max, candidate.call_id)
        stratum.ranked.append(Ranked(candidate, weight, key))
    for stratum in strata.values():
        stratum.ranked.sort(key=lambda r: (-r.key, r.candidate.call_id))
    return [strata[k] for k in sorted(strata)]


def _reasons(ranked: Ranked, first: str) -> tuple[str, ...]:
    extra = (("complaint",) if ranked.candidate.complaint else ()) + (
        ("repeat_contact",) if ranked.candidate.repeat else ()
    )
    return (first, *extra)


def allocate(strata: Sequence[Stratum], params: SamplingParams) -> list[Pick]:
    """The sample: each stratum's quota of best keys, then the per-agent minimum from the best keys
    left among that agent's strata. ``strata`` may hold only each stratum's ``depth`` best calls."""
    picks: list[Pick] = []
    per_agent: dict[int, int] = defaultdict(int)
    leftovers: dict[int, list[Ranked]] = defaultdict(list)
    for stratum in sorted(strata, key=lambda s: (s.agent_id, s.queue)):
        quota = params.quota(stratum.size)
        for ranked in stratum.ranked[:quota]:
            picks.append(Pick(ranked.candidate, ranked.weight, _reasons(ranked, "random")))
        per_agent[stratum.agent_id] += min(quota, len(stratum.ranked))
        leftovers[stratum.agent_id].extend(stratum.ranked[quota:])
    for agent_id in sorted(leftovers):
        missing = params.min_per_agent - per_agent[agent_id]
        if missing <= 0:
            continue
        best = sorted(leftovers[agent_id], key=lambda r: (-r.key, r.candidate.call_id))[:missing]
        picks.extend(Pick(r.candidate, r.weight, _reasons(r, "min_one")) for r in best)
    return picks


def population_digest(strata: Iterable[Stratum]) -> str:
    lines = sorted(stratum.fingerprint() for stratum in strata)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# --- periods -------------------------------------------------------------------------------------


def period_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants of local midnight at ``start`` and ``end`` (exclusive), in UTC."""
    first = datetime.combine(start, time(0), tzinfo=zone).astimezone(UTC)
    last = datetime.combine(end, time(0), tzinfo=zone).astimezone(UTC)
    return first, last


def day_to_draw(now: datetime, zone: ZoneInfo, lag_days: int) -> date:
    """The local day the daily job draws: the one that ended ``lag_days`` ago."""
    return now.astimezone(zone).date() - timedelta(days=lag_days)


# --- the population from the database -------------------------------------------------------------


def candidates(
    session: Session,
    first: datetime,
    last: datetime,
    params: SamplingParams,
    *,
    keep_run: int | None = None,
) -> list[Candidate]:
    """The population of ``[first, last)`` on any database (used on SQLite; the reference).

    Reads the two columns the database keeps on each call (migration 0010): ``recordings_verified``
    and ``next_contact_at`` (the start of the caller's next call: a repeat contact when it comes
    within ``repeat_contact_days``). Calls sampled by other runs are left out; those of ``keep_run``
    stay (to re-draw that run)."""
    recording_id = (
        select(func.min(Recording.id))
        .where(Recording.call_id == Call.id, Recording.kind == "call")
        .scalar_subquery()
    )
    already = (
        select(QASample.call_id)
        .where(QASample.call_id == Call.id, QASample.run_id != (keep_run or 0))
        .exists()
    )
    rows = session.execute(
        select(
            Call.id,
            Call.agent_id,
            Call.queue_name,
            Call.started_at,
            Call.next_contact_at,
            recording_id.label("recording_id"),
        )
        .where(
            Call.started_at >= first,
            Call.started_at < last,
            Call.answered_at.is_not(None),
            Call.agent_id.is_not(None),
            Call.recordings_verified,
            Call.talk_s >= params.min_talk_s,
            ~already,
        )
        .order_by(Call.id)
    ).all()
    window = timedelta(days=params.repeat_contact_days)
    complaint_queues = set(params.complaint_queues)
    return [
        Candidate(
            call_id=row.id,
            recording_id=row.recording_id,
            agent_id=row.agent_id,
            queue=row.queue_name or "",
            complaint=(row.queue_name or "") in complaint_queues,
            repeat=row.next_contact_at is not None and row.next_contact_at - row.started_at <= window,
        )
        for row in rows
    ]


# Two passes over the population, never a million rows materialised, joined or sorted. The
# population is read by the partial covering index ``ix_call_qa_draw`` (an index-only scan where the
# visibility map is current, which autovacuum keeps): it holds exactly the answered, agent-handled
# calls whose recordings are all verified, with what the draw needs (the repeat flag comes from the
# kept ``next_contact_at``). Pass 1 counts the strata (a hash aggregate: a few hundred groups).
# Pass 2 computes each call's weighted key and keeps only the calls whose key can matter: a stratum
# needs only its ``depth`` best keys, and keys are at least uniform (weights ≥ 1 only raise them), so
# about (1 − θ)·size keys exceed θ; θ is chosen so that depth + 5·√depth + 10 are expected above it
# (fewer than depth survive with a probability of about 10⁻⁶ per stratum). Each call finds its
# stratum's θ in an array by position — (agent − first agent) × number of queues + the queue's
# place — which costs a third of a hash join of a million rows to the strata. Only the survivors
# are joined to their strata and ranked. If a stratum is left with fewer than ``depth``, everything
# is ranked again unthinned (``:thin`` false), so the result is exactly the full ranking.
RANKED_SQL = text(
    """
WITH eligible AS NOT MATERIALIZED (
    SELECT c.id AS call_id, c.agent_id, c.queue_name,
           (c.next_contact_at IS NOT NULL
            AND c.next_contact_at <= c.started_at + make_interval(secs => :repeat_s)) AS repeat
    FROM call c
    WHERE c.started_at >= :first AND c.started_at < :last
      AND c.answered_at IS NOT NULL AND c.agent_id IS NOT NULL AND c.recordings_verified
      AND c.talk_s >= :min_talk_s
      AND c.id NOT IN (SELECT s.call_id FROM qa_sample s WHERE s.run_id <> :keep_run)
), strata AS MATERIALIZED (
    -- grouped by the raw queue name (cheaper to hash), then no queue and '' taken as one
    SELECT agent_id, coalesce(queue_name, '') COLLATE "C" AS queue, sum(size)::int8 AS size,
           sum(id_sum)::int8 AS id_sum, min(id_min) AS id_min, max(id_max) AS id_max
    FROM (
        SELECT agent_id, queue_name, count(*) AS size, sum(call_id) AS id_sum,
               min(call_id) AS id_min, max(call_id) AS id_max
        FROM eligible GROUP BY agent_id, queue_name
    ) raw
    GROUP BY agent_id, coalesce(queue_name, '') COLLATE "C"
), depths AS (
    SELECT strata.*,
           LEAST(size, GREATEST(1, :min_per_agent,
                 CASE WHEN :count_mode THEN :per_stratum ELSE floor(:rate * size)::int END)) AS depth
    FROM strata
), floors AS MATERIALIZED (
    SELECT depths.*,
           CASE WHEN :thin THEN 1.0::float8 - (depth + 5.0 * sqrt(depth) + 10.0) / size
                ELSE '-Infinity'::float8 END AS floor_key
    FROM depths
), prefloors AS MATERIALIZED (
    -- key > θ needs u > θ^weight ≥ θ^(largest weight): a cheaper test first (a hair lower, so
    -- rounding can never drop a call whose key is above θ)
    SELECT floors.*,
           CASE WHEN floor_key > 0.0::float8
                THEN power(floor_key, CAST(:max_weight AS float8)) * (1.0::float8 - 1e-9::float8)
                ELSE '-Infinity'::float8 END AS pre_floor_key
    FROM floors
), layout AS MATERIALIZED (
    -- stratum (agent, queue) is slot (agent_id − first) × cardinality(queues) + position of queue
    SELECT coalesce(array_agg(DISTINCT queue), '{}') AS queues, coalesce(min(agent_id), 0) AS first,
           coalesce(max(agent_id), -1) AS last
    FROM strata
), placed AS (
    SELECT (f.agent_id - l.first) * cardinality(l.queues) + array_position(l.queues, f.queue) AS slot,
           f.floor_key, f.pre_floor_key
    FROM prefloors f CROSS JOIN layout l
), slots AS MATERIALIZED (
    SELECT coalesce(array_agg(coalesce(p.floor_key, 'Infinity'::float8) ORDER BY g.slot), '{}')
             AS floor_at,
           coalesce(array_agg(coalesce(p.pre_floor_key, 'Infinity'::float8) ORDER BY g.slot), '{}')
             AS pre_floor_at
    FROM layout l
    CROSS JOIN generate_series(1, (l.last - l.first + 1) * cardinality(l.queues)) AS g(slot)
    LEFT JOIN placed p ON p.slot = g.slot
), weighted AS (
    SELECT e.call_id, e.agent_id, e.queue, e.queue = ANY(:complaint_queues) AS complaint, e.repeat,
           UNIFORM AS u
    FROM (SELECT eligible.*, coalesce(queue_name, '') COLLATE "C" AS queue FROM eligible) e
), keyed AS (
    SELECT w.*,
           (CASE WHEN complaint THEN CAST(:complaint_weight AS float8) ELSE 1.0::float8 END)
           * (CASE WHEN repeat THEN CAST(:repeat_weight AS float8) ELSE 1.0::float8 END) AS weight
    FROM weighted w
), survivors AS (
    SELECT k.call_id, k.agent_id, k.queue, k.complaint, k.repeat, k.weight,
           power(k.u, 1.0::float8 / k.weight) AS key
    FROM keyed k
    WHERE k.u > (SELECT pre_floor_at FROM slots)[
            (k.agent_id - (SELECT first FROM layout)) * (SELECT cardinality(queues) FROM layout)
            + array_position((SELECT queues FROM layout), k.queue)]
      AND power(k.u, 1.0::float8 / k.weight) > (SELECT floor_at FROM slots)[
            (k.agent_id - (SELECT first FROM layout)) * (SELECT cardinality(queues) FROM layout)
            + array_position((SELECT queues FROM layout), k.queue)]
), thinned AS (
    SELECT s.*, d.size, d.id_sum, d.id_min, d.id_max, d.depth
    FROM survivors s JOIN floors d ON d.agent_id = s.agent_id + 0 AND d.queue = s.queue
), ranked AS (
    SELECT thinned.*,
           row_number() OVER (PARTITION BY agent_id, queue ORDER BY key DESC, call_id) AS rn
    FROM thinned
), picked AS MATERIALIZED (
    SELECT * FROM ranked WHERE rn <= depth ORDER BY call_id  -- recordings looked up in id order
)
SELECT picked.agent_id, picked.queue, picked.rn, picked.call_id,
       (SELECT min(r.id) FROM recording r WHERE r.call_id = picked.call_id AND r.kind = 'call')
         AS recording_id,
       picked.complaint, picked.repeat, picked.weight, picked.key, picked.size, picked.id_sum,
       picked.id_min, picked.id_max, picked.depth, (SELECT count(*) FROM strata) AS n_strata
FROM picked
""".replace("UNIFORM", UNIFORM_SQL)
)


def _complete(rows: Sequence[Any]) -> bool:
    """Did thinning leave every stratum at least its depth?"""
    if not rows:  # nothing survived, or nothing to sample: only the whole ranking can tell
        return False
    returned: dict[tuple[int, str], int] = defaultdict(int)
    depth: dict[tuple[int, str], int] = {}
    for row in rows:
        returned[(row.agent_id, row.queue)] += 1
        depth[(row.agent_id, row.queue)] = row.depth
    strata = rows[0].n_strata
    return len(returned) == strata and all(returned[k] >= depth[k] for k in returned)


def _ranked_postgres(
    session: Session,
    first: datetime,
    last: datetime,
    seed: int,
    params: SamplingParams,
    keep_run: int | None,
) -> list[Stratum]:
    """The same strata as ``rank(candidates(...))``, each cut to its ``depth`` best calls, ranked by
    PostgreSQL (a million calls never cross the wire)."""
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    session.execute(text("SET LOCAL jit = off"))  # compiling costs more than it saves here
    # The strata are a few hundred rows: hash them rather than sort a million keys to merge-join.
    session.execute(text("SET LOCAL enable_mergejoin = off"))
    # Two cores: parallel workers only compete with the leader (and their CPU time would not show
    # as this backend's).
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    values = {
        "first": first,
        "last": last,
        "complaint_queues": list(params.complaint_queues),
        "repeat_s": params.repeat_contact_days * 86400,  # whole days of 24 h, as in Python
        "min_talk_s": params.min_talk_s,
        "complaint_weight": params.complaint_weight,
        "repeat_weight": params.repeat_contact_weight,
        "max_weight": max(
            1.0,
            params.complaint_weight,
            params.repeat_contact_weight,
            params.complaint_weight * params.repeat_contact_weight,
        ),
        "seed": seed,
        "min_per_agent": params.min_per_agent,
        "count_mode": params.mode == "count",
        "per_stratum": params.per_stratum,
        "rate": params.rate,
        "keep_run": keep_run or 0,
    }
    rows = _fetch(session, values, thin=True)
    if not _complete(rows):
        rows = _fetch(session, values, thin=False)
    rows.sort()  # by stratum, then rank
    strata: dict[tuple[int, str], Stratum] = {}
    for row in rows:
        stratum = strata.get((row.agent_id, row.queue))
        if stratum is None:
            stratum = strata[(row.agent_id, row.queue)] = Stratum(
                row.agent_id, row.queue, int(row.size), int(row.id_sum), row.id_min, row.id_max
            )
        candidate = Candidate(
            row.call_id, row.recording_id, row.agent_id, row.queue, row.complaint, row.repeat
        )
        stratum.ranked.append(Ranked(candidate, float(row.weight), float(row.key)))
    return [strata[k] for k in sorted(strata)]


class _Row(NamedTuple):
    """A row of RANKED_SQL, in its column order (plain tuples: thousands are read per draw)."""

    agent_id: int
    queue: str
    rn: int
    call_id: int
    recording_id: int
    complaint: bool
    repeat: bool
    weight: float
    key: float
    size: int
    id_sum: int
    id_min: int
    id_max: int
    depth: int
    n_strata: int


def _fetch(session: Session, values: dict[str, Any], *, thin: bool) -> list[_Row]:
    result = session.execute(RANKED_SQL, {**values, "thin": thin})
    return [_Row._make(row) for row in result.tuples()]


def ranked_strata(
    session: Session,
    first: datetime,
    last: datetime,
    seed: int,
    params: SamplingParams,
    *,
    keep_run: int | None = None,
) -> list[Stratum]:
    if session.get_bind().dialect.name == "postgresql":
        return _ranked_postgres(session, first, last, seed, params, keep_run)
    return rank(candidates(session, first, last, params, keep_run=keep_run), seed, params)


# --- runs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawResult:
    run_id: int
    created: bool
    population: int
    sampled: int


def new_seed() -> int:
    """A fresh seed: unpredictable, so nobody can tell in advance which calls will be checked."""
    return secrets.randbits(62)


def draw(
    session: Session,
    *,
    start: date,
    end: date,
    params: SamplingParams,
    zone: ZoneInfo,
    now: datetime,
    seed: int | None = None,
    trigger: str = "job",
) -> DrawResult:
    """Draw the sample of local days ``[start, end)`` once. Drawing a period that has a run returns
    that run unchanged (idempotent); its samples are not duplicated."""
    if end <= start:
        raise ValueError("the period must end after it starts")
    existing = session.execute(
        select(QASampleRun).where(QASampleRun.period_start == start, QASampleRun.period_end == end)
    ).scalar_one_or_none()
    if existing is not None:
        return DrawResult(existing.id, False, existing.population, existing.sampled)
    seed = new_seed() if seed is None else seed
    first, last = period_bounds(start, end, zone)
    strata = ranked_strata(session, first, last, seed, params)
    picks = allocate(strata, params)
    run = QASampleRun(
        period_start=start,
        period_end=end,
        seed=seed,
        params={**params.to_json(), "timezone": zone.key},
        population=sum(stratum.size for stratum in strata),
        population_digest=population_digest(strata),
        sampled=len(picks),
        trigger=trigger,
        created_at=now,
    )
    session.add(run)
    session.flush()
    session.add_all(
        QASample(
            run_id=run.id,
            call_id=pick.candidate.call_id,
            recording_id=pick.candidate.recording_id,
            agent_id=pick.candidate.agent_id,
            queue_name=pick.candidate.queue,
            reasons=list(pick.reasons),
            weight=pick.weight,
            created_at=now,
        )
        for pick in picks
    )
    session.flush()
    return DrawResult(run.id, True, run.population, run.sampled)


def params_of(run: QASampleRun) -> SamplingParams:
    stored = {k: v for k, v in run.params.items() if k in SamplingParams.__dataclass_fields__}
    stored["complaint_queues"] = tuple(stored.get("complaint_queues", ()))
    return SamplingParams(**stored)


@dataclass(frozen=True)
class Redraw:
    same_population: bool
    same_sample: bool
    stored: list[int]
    redrawn: list[int]


def redraw(session: Session, run_id: int) -> Redraw:
    """Draw a stored run again from its seed and parameters and compare (nothing is written)."""
    run = session.get(QASampleRun, run_id)
    if run is None:
        raise LookupError(f"no sample run {run_id}")
    zone = ZoneInfo(str(run.params.get("timezone", "UTC")))
    first, last = period_bounds(run.period_start, run.period_end, zone)
    params = params_of(run)
    strata = ranked_strata(session, first, last, run.seed, params, keep_run=run.id)
    redrawn = sorted(pick.candidate.call_id for pick in allocate(strata, params))
    stored = sorted(sample.call_id for sample in run.samples)
    return Redraw(population_digest(strata) == run.population_digest, stored == redrawn, stored, redrawn)
