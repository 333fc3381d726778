"""Sign-in throttling counted in the database: limits, windows, locks, resets, several workers."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from callcenter.db import Database
from callcenter.models import AuditLog, LoginThrottle
from callcenter.services.login_throttle import (
    ADDRESS,
    USER,
    Lock,
    ThrottleRules,
    current_lock,
    has_failures,
    record_failure,
    record_success,
)

RULES = ThrottleRules(
    max_failures=5, max_failures_per_address=8, window=timedelta(minutes=15), lockout=timedelta(minutes=15)
)
ADDR = "192.0.2.10"


def fail(db: Database, now: datetime, username: str = "lina", address: str | None = ADDR) -> Lock | None:
    with db.transaction() as session:
        return record_failure(session, username, address, RULES, now=now)


def lock_of(db: Database, now: datetime, username: str = "lina", address: str | None = ADDR) -> Lock | None:
    with db.read() as session:
        return current_lock(session, username, address, now=now)


def test_the_fifth_failure_locks_the_username_for_the_lockout(db: Database, now: datetime) -> None:
    for minute in range(4):
        assert fail(db, now + timedelta(minutes=minute)) is None
        assert lock_of(db, now + timedelta(minutes=minute)) is None
    fifth = now + timedelta(minutes=4)
    assert fail(db, fifth) == Lock(USER, fifth + RULES.lockout)
    assert lock_of(db, fifth + timedelta(minutes=14, seconds=59)) == Lock(USER, fifth + RULES.lockout)
    assert lock_of(db, fifth + RULES.lockout) is None


def test_failures_spread_beyond_the_window_do_not_lock(db: Database, now: datetime) -> None:
    for step in range(10):
        assert fail(db, now + step * timedelta(minutes=4)) is None  # a new window every 16 minutes
    assert lock_of(db, now + timedelta(minutes=40)) is None


def test_case_and_blanks_do_not_make_a_new_username(db: Database, now: datetime) -> None:
    for name in ("lina", "LINA", " Lina", "lina ", "LiNa"):
        lock = fail(db, now, name)
    assert lock is not None and lock.scope == USER
    assert lock_of(db, now, "Lina") is not None


def test_unknown_usernames_are_counted_like_known_ones(db: Database, now: datetime) -> None:
    for _ in range(5):
        lock = fail(db, now, "nobody-here", None)
    assert lock == Lock(USER, now + RULES.lockout)


def test_a_lock_is_logged_and_audited(db: Database, now: datetime, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="callcenter.services.login_throttle"):
        for _ in range(5):
            fail(db, now)
    assert "sign-in locked for user 'lina' for 15 min after 5 failures" in caplog.text
    with db.read() as session:
        rows = list(session.execute(select(AuditLog).where(AuditLog.action == "auth.lockout")).scalars())
    assert [(row.object_type, row.object_id, row.remote_addr) for row in rows] == [(USER, "lina", ADDR)]


def test_the_address_locks_after_its_own_higher_limit(db: Database, now: datetime) -> None:
    # Eight different usernames from one address: no username reaches 5, the address reaches 8.
    locks = [fail(db, now, f"user{index}") for index in range(8)]
    assert locks[:7] == [None] * 7
    assert locks[7] == Lock(ADDRESS, now + RULES.lockout)
    assert lock_of(db, now, "someone-else") == Lock(ADDRESS, now + RULES.lockout)
    assert lock_of(db, now, "someone-else", "192.0.2.99") is None


def test_success_clears_the_username_but_not_the_address(db: Database, now: datetime) -> None:
    for _ in range(4):
        fail(db, now)
    with db.transaction() as session:
        assert has_failures(session, "lina")
        record_success(session, "Lina")
        assert not has_failures(session, "lina")
    for _ in range(3):
        assert fail(db, now) is None  # a fresh count for the username (four would have locked)
    with db.read() as session:
        user = session.get(LoginThrottle, (USER, "lina"))
        address = session.get(LoginThrottle, (ADDRESS, ADDR))
        assert user is not None and user.failures == 3
        assert address is not None and address.failures == 7


def test_after_a_lock_the_count_starts_again(db: Database, now: datetime) -> None:
    for _ in range(5):
        fail(db, now)
    later = now + RULES.lockout
    assert [fail(db, later) for _ in range(4)] == [None] * 4
    assert fail(db, later) is not None


def test_stale_counters_are_purged(db: Database, now: datetime) -> None:
    fail(db, now, "old", "192.0.2.1")
    fail(db, now + timedelta(hours=1), "new", "192.0.2.2")
    with db.read() as session:
        keys = set(session.execute(select(LoginThrottle.key)).scalars())
    assert keys == {"new", "192.0.2.2"}


def test_two_workers_failing_at_once_count_every_failure(db: Database, now: datetime) -> None:
    # Two Database objects are two connection pools, as two gunicorn workers have.
    workers = [Database(db.url), Database(db.url)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def attempt(worker: Database) -> None:
        try:
            barrier.wait()
            with worker.transaction() as session:
                record_failure(session, "target", None, RULES, now=now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(workers[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for worker in workers:
        worker.dispose()
    assert errors == []
    with db.read() as session:
        row = session.get(LoginThrottle, (USER, "target"))
        assert row is not None
        # 8 failures: the fifth locked and restarted the count, so three are counted after it.
        assert row.locked_until == now + RULES.lockout
        assert row.failures == 3
        assert session.execute(select(func.count()).select_from(AuditLog)).scalar_one() == 1
