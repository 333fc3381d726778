"""QA sampling over a million recorded calls on PostgreSQL: the stratified, weighted draw in SQL.

Creates a throwaway database (dropped at the end), migrates it, generates the calls and their
recordings with ``generate_series`` (200 agents × 2 queues, a month, ~1 % unrecorded, 2 % missing
recordings, short calls, 800 000 callers: about a quarter of the calls are followed by a repeat
contact within 7 days) with the database's triggers active, so the columns they keep on each call
(``next_contact_at``, ``recordings_verified``: migration 0010) are written as in production, checks
them against their derivation (every call), VACUUM ANALYZEs (what autovacuum would do after such a
load: the draw reads an index only, which relies on the visibility map), then times:

* ``rank``: ``ranked_strata`` + ``allocate`` — what a draw computes (the SQL path);
* ``draw``: the whole ``draw`` (the run and its samples written) in a transaction rolled back;
* ``baseline``: the reference path that fetches every eligible call and ranks in Python
  (``candidates`` + ``rank`` + ``allocate``), the same result, once.

Each SQL timing is the median of ``--repeat`` runs with different seeds.
Usage: python -m bench.qa [--calls 1000000] [--agents 200] [--repeat 3] [--url postgresql+psycopg://…]
       [--keep] [--reuse DATABASE] [--no-baseline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.db.migrate import upgrade
from callcenter.services.qa_sampling import (
    SamplingParams,
    allocate,
    candidates,
    draw,
    period_bounds,
    rank,
    ranked_strata,
)

ZONE = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 11, 1), date(2026, 12, 1)
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def generate(dsn: str, calls: int, agents: int) -> None:
    """The calls, then their recordings, each one statement (the triggers run once per statement)."""
    first, last = period_bounds(START, END, ZONE)
    span = (last - first).total_seconds()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agent (id, name, skill_level, team, active, created_at)"
            " SELECT g, 'agent ' || g, 'mid', 'team ' || (g %% 10), true, now()"
            " FROM generate_series(1, %s) g",
            (agents,),
        )
        conn.execute(
            """
            INSERT INTO call (id, channel, external_id, direction, from_raw, from_e164, from_valid,
                              to_raw, caller_name, created_at, started_at, answered_at, ended_at,
                              ivr_path, queue_name, priority, agent_id, talk_s, transfers, disposition)
            SELECT g, 'asterisk', 'bench.' || g, 'inbound', n, n, true, '4008123123', '',
                   t, t, t + interval '8 seconds', t + make_interval(secs => 8 + talk),
                   '[]', CASE WHEN g %% 4 = 0 THEN 'complaint' ELSE 'consultation' END, 0,
                   1 + ((g * 2654435761) %% 1000003) %% %(agents)s, talk, '[]', 'completed'
            FROM (
                SELECT g,
                       %(first)s::timestamptz
                         + make_interval(secs => (g::float8 / %(calls)s) * %(span)s) AS t,
                       '+86138' || lpad(((g * 104729) %% 800000)::text, 8, '0') AS n,
                       5 + (g * 31337) %% 596 AS talk
                FROM generate_series(1::bigint, %(calls)s::bigint) g
            ) s
            """,
            {"agents": agents, "first": first, "calls": calls, "span": span},
        )
        conn.execute(
            """
            INSERT INTO recording (call_id, source, external_id, kind, uri, status, duration_s,
                                   size_bytes, sha256, created_at)
            SELECT id, 'asterisk', 'bench-' || id || '.wav', 'call', 'bench-' || id || '.wav',
                   CASE WHEN id % 50 = 0 THEN 'missing' ELSE 'verified' END, talk_s, talk_s * 16000,
                   md5(id::text) || md5(id::text), created_at
            FROM call WHERE id % 100 <> 0
            """
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('call', 'id'), %s)", (calls,))


# The kept columns against their definitions, over every call.
CHECK_SQL = """
SELECT
  (SELECT count(*) FROM (
     SELECT c.next_contact_at,
            CASE WHEN c.from_e164 IS NOT NULL THEN lead(c.started_at) OVER (
                PARTITION BY c.from_e164 ORDER BY c.started_at, c.id) END AS derived
     FROM call c) x
   WHERE x.next_contact_at IS DISTINCT FROM x.derived),
  (SELECT count(*) FROM call c
   WHERE c.recordings_verified IS DISTINCT FROM (
     EXISTS (SELECT 1 FROM recording r WHERE r.call_id = c.id AND r.kind = 'call')
     AND NOT EXISTS (SELECT 1 FROM recording r
                     WHERE r.call_id = c.id AND r.kind = 'call' AND r.status <> 'verified'))),
  (SELECT count(*) FROM call WHERE next_contact_at IS NOT NULL),
  (SELECT count(*) FROM call WHERE recordings_verified)
"""


def check_and_vacuum(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(CHECK_SQL).fetchone()
        assert row is not None
        wrong_next, wrong_verified, with_next, verified = row
        print(
            f"kept columns: {with_next:,} calls with a next contact, {verified:,} with verified"
            f" recordings; differing from the derivation: {wrong_next} and {wrong_verified}"
        )
        if wrong_next or wrong_verified:
            raise SystemExit("the triggers' columns differ from their derivation")
        conn.execute("VACUUM ANALYZE")


def backend_cpu(session: Session) -> float | None:
    """CPU seconds used so far by this session's PostgreSQL backend (when it runs on this machine):
    on a shared machine the wall time also counts the time other processes held the cores."""
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(db: Database, label: str, params: SamplingParams, repeat: int) -> str:
    """Median over ``repeat`` seeds of the ranking alone (wall and the backend's CPU time) and of
    the whole draw (rolled back)."""
    first, last = period_bounds(START, END, ZONE)
    now = datetime(2026, 12, 2, tzinfo=UTC)
    ranks, cpus, draws = [], [], []
    population = sampled = 0
    for seed in range(1, repeat + 1):
        with db.transaction() as session:
            cpu_before = backend_cpu(session)
            began = time.perf_counter()
            strata = ranked_strata(session, first, last, seed, params)
            picks = allocate(strata, params)
            ranks.append(time.perf_counter() - began)
            cpu_after = backend_cpu(session)
            if cpu_before is not None and cpu_after is not None:
                cpus.append(cpu_after - cpu_before)
            population, sampled = sum(s.size for s in strata), len(picks)
        session = db.sessions()
        try:
            session.begin()
            began = time.perf_counter()
            draw(session, start=START, end=END, params=params, zone=ZONE, now=now, seed=seed)
            draws.append(time.perf_counter() - began)
        finally:
            session.rollback()
            session.close()
    cpu = f"{statistics.median(cpus):.2f} s" if cpus else "n/a"
    return (
        f"| {label} | {population:,} | {sampled:,} | {statistics.median(ranks):.2f} s | {cpu}"
        f" | {statistics.median(draws):.2f} s (min {min(draws):.2f}, max {max(draws):.2f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=ADMIN_URL, help="an admin URL of the PostgreSQL server")
    parser.add_argument("--no-baseline", action="store_true", help="skip the Python reference path")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--reuse", default=None, help="time a database kept by an earlier --keep run")
    args = parser.parse_args()

    name = args.reuse or f"callcenter_bench_qa_{uuid.uuid4().hex[:10]}"
    admin_dsn = args.url.replace("postgresql+psycopg://", "postgresql://")
    url = args.url.rsplit("/", 1)[0] + f"/{name}"
    if not args.reuse:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    db: Database | None = None
    try:
        if not args.reuse:
            upgrade(url)
            began = time.perf_counter()
            dsn = url.replace("postgresql+psycopg://", "postgresql://")
            generate(dsn, args.calls, args.agents)
            print(f"generated {args.calls:,} calls in {time.perf_counter() - began:.1f} s (triggers on)")
            check_and_vacuum(dsn)
        db = Database(url)
        first, last = period_bounds(START, END, ZONE)
        print(
            "| sampling | eligible calls | sampled | rank (median wall) | rank (median backend CPU)"
            " | draw incl. writes (median wall) |"
        )
        print("|---|---|---|---|---|---|")
        for label, params in (
            ("count 5/stratum", SamplingParams(per_stratum=5)),
            ("rate 2 %", SamplingParams(mode="rate", rate=0.02)),
        ):
            print(measure(db, label, params, args.repeat))
        if not args.no_baseline:
            params = SamplingParams(per_stratum=5)
            with db.read() as session:
                began = time.perf_counter()
                found = allocate(rank(candidates(session, first, last, params), 1, params), params)
                seconds = time.perf_counter() - began
            print(
                f"baseline (every eligible call fetched, ranked in Python): {seconds:.2f} s,"
                f" {len(found):,} sampled"
            )
    finally:
        if db is not None:
            db.dispose()
        if args.keep:
            print(f"kept database {name} (drop it when done)")
        else:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
