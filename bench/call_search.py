"""Call-log search on a large table: the time of one page (51 rows) per kind of search, and the plan.

Fills a fresh database (SQLite file, or PostgreSQL with ``--postgres URL`` to an empty database) with
``--calls`` calls over 90 days from ``--numbers`` distinct callers, 20 agents and 3 queues, then runs
each search the call log offers through ``services/call_search.search_calls`` and reports the median of
``--repeat`` runs and whether the plan uses an index (SQLite: ``EXPLAIN QUERY PLAN``; PostgreSQL:
``EXPLAIN``). The rows go in with Core inserts (the contact-record write path is measured elsewhere).
Usage: python -m bench.call_search [--calls 200000] [--postgres postgresql+psycopg://…/empty_db]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, text

from callcenter.db import Database
from callcenter.db.migrate import upgrade
from callcenter.models import Agent, Call, Caller, Queue
from callcenter.services.call_search import CallFilter, NumberPattern, conditions, day_range, search_calls

ZONE = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
BATCH = 5000


def fill(db: Database, calls: int, numbers: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    phones = [f"+86138{index:08d}" for index in range(numbers)]
    with db.transaction() as session:
        session.execute(
            insert(Queue),
            [
                {"name": name, "title_zh": name, "title_en": name, "created_at": END}
                for name in ("a", "b", "c")
            ],
        )
        session.execute(
            insert(Agent),
            [
                {
                    "name": f"agent{index}",
                    "extension": f"PJSIP/{1000 + index}",
                    "skill_level": "mid",
                    "team": "",
                    "active": True,
                    "created_at": END,
                }
                for index in range(20)
            ],
        )
        session.execute(
            insert(Caller),
            [
                {
                    "e164": phone,
                    "name": f"客户{index}",
                    "tier": "normal",
                    "region": "",
                    "created_at": END,
                    "updated_at": END,
                }
                for index, phone in enumerate(phones)
            ],
        )
        caller_ids = dict(session.execute(select(Caller.e164, Caller.id)).tuples().all())
    dispositions = ["answered", "abandoned_in_queue", "completed", "not_answered"]
    for start in range(0, calls, BATCH):
        rows = []
        for index in range(start, min(calls, start + BATCH)):
            phone = rng.choice(phones)
            rows.append(
                {
                    "channel": "asterisk",
                    "external_id": f"bench.{index}",
                    "direction": "outbound" if index % 10 == 0 else "inbound",
                    "from_raw": phone[3:],
                    "from_e164": phone,
                    "from_valid": True,
                    "to_raw": "4008123123",
                    "to_e164": "+864008123123",
                    "caller_name": "",
                    "caller_id": caller_ids[phone],
                    "created_at": END,
                    "started_at": END - timedelta(seconds=rng.randrange(90 * 86400)),
                    "ivr_path": [],
                    "priority": 0,
                    "queue_id": rng.randint(1, 3),
                    "agent_id": rng.randint(1, 20),
                    "transfers": [],
                    "disposition": rng.choice(dispositions),
                }
            )
        with db.transaction() as session:
            session.execute(insert(Call), rows)
    with db.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return phones


def searches(phones: list[str]) -> dict[str, CallFilter]:
    start, end = day_range(date(2026, 11, 1), date(2026, 11, 7), ZONE)
    return {
        "newest (no filter)": CallFilter(),
        "exact number": CallFilter(number=NumberPattern(exact=phones[42])),
        "partial number (last 4)": CallFilter(number=NumberPattern(digits=phones[42][-4:])),
        "partial, rare (8 digits)": CallFilter(number=NumberPattern(digits=phones[42][-8:])),
        "caller name (archive)": CallFilter(name="客户42"),
        "caller name, rare": CallFilter(name="客户19999"),
        "one week": CallFilter(start=start, end=end),
        "agent": CallFilter(agent_id=7),
        "queue + disposition": CallFilter(queue_id=2, disposition="abandoned_in_queue"),
        "agent + week + outbound": CallFilter(agent_id=7, start=start, end=end, direction="outbound"),
    }


def timed(run: Callable[[], object], repeat: int) -> float:
    laps = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        laps.append(time.perf_counter() - began)
    return statistics.median(laps) * 1000


def plan(db: Database, found: CallFilter) -> str:
    with db.read() as session:
        where = conditions(session, found)
    query = select(Call.id).where(*where).order_by(Call.started_at.desc(), Call.id.desc()).limit(51)
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + str(compiled)).all()
    lines = [str(row[-1]) for row in rows]
    return " | ".join(line.strip() for line in lines)[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--numbers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="URL of an empty PostgreSQL database (default: an SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.postgres or f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        db = Database(url)
        began = time.perf_counter()
        phones = fill(db, args.calls, args.numbers)
        print(
            f"{db.dialect}: {args.calls} calls, {args.numbers} numbers,"
            f" filled in {time.perf_counter() - began:.0f} s"
        )
        for name, found in searches(phones).items():

            def run(found: CallFilter = found) -> object:
                with db.read() as session:
                    return search_calls(session, found, limit=51)

            count = len(run())  # type: ignore[arg-type]
            print(f"  {name:28} {timed(run, args.repeat):8.1f} ms  {count:3d} rows  {plan(db, found)}")
        db.dispose()


if __name__ == "__main__":
    main()
