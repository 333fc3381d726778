"""Sign-in throttling: failed sign-ins counted per username and per client address in the database.

Counting in the database (``LoginThrottle``) is what makes the limit hold when several gunicorn workers
or web nodes serve sign-ins: a per-process counter would give an attacker ``workers × limit`` tries.
Each failure is one short write transaction that takes the counter's row lock (``SELECT … FOR UPDATE``
on PostgreSQL; SQLite has one writer at a time), so concurrent failures are all counted. The lock check
before a sign-in is a read: two attempts racing it may both be judged, which costs at most one extra
guess per worker, never an unbounded number.

A window starts at the first failure and lasts ``window``; reaching the limit inside it locks the key for
``lockout`` and starts a fresh count. Unknown usernames are counted exactly like known ones, so a lock
says nothing about whether an account exists. A successful sign-in clears its username's counter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.models import AuditLog, LoginThrottle
from callcenter.settings import Accounts

log = logging.getLogger(__name__)

USER = "user"
ADDRESS = "address"
KEY_LENGTH = 128


@dataclass(frozen=True)
class ThrottleRules:
    max_failures: int
    max_failures_per_address: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def from_settings(cls, accounts: Accounts) -> ThrottleRules:
        return cls(
            max_failures=accounts.max_failures,
            max_failures_per_address=accounts.max_failures_per_address,
            window=timedelta(minutes=accounts.failure_window_minutes),
            lockout=timedelta(minutes=accounts.lockout_minutes),
        )

    def limit(self, scope: str) -> int:
        return self.max_failures if scope == USER else self.max_failures_per_address


@dataclass(frozen=True)
class Lock:
    """Sign-ins for this username (``scope`` user) or from this address are refused until ``until``."""

    scope: str
    until: datetime


def user_key(username: str) -> str:
    # Case and blanks do not make a new username for the counter ("Admin", " admin").
    return username.strip().casefold()[:KEY_LENGTH]


def _keys(username: str, address: str | None) -> list[tuple[str, str]]:
    keys = [(USER, user_key(username))]
    if address:
        keys.append((ADDRESS, address[:KEY_LENGTH]))
    return keys


def current_lock(session: Session, username: str, address: str | None, *, now: datetime) -> Lock | None:
    """The lock in force for this username or address at ``now`` (the username's first), else None."""
    rows = session.execute(
        select(LoginThrottle.scope, LoginThrottle.locked_until).where(
            or_(
                *(
                    and_(LoginThrottle.scope == scope, LoginThrottle.key == key)
                    for scope, key in _keys(username, address)
                )
            ),
            LoginThrottle.locked_until > now,
        )
    ).all()
    locks = sorted((Lock(scope, until) for scope, until in rows if until is not None), key=_user_first)
    return locks[0] if locks else None


def _user_first(lock: Lock) -> tuple[bool, datetime]:
    return (lock.scope != USER, lock.until)


def has_failures(session: Session, username: str) -> bool:
    """Whether the username has a counter to clear (a read, so most sign-ins write nothing)."""
    query = select(LoginThrottle.key).where(
        LoginThrottle.scope == USER, LoginThrottle.key == user_key(username)
    )
    return session.execute(query).first() is not None


def record_failure(
    session: Session, username: str, address: str | None, rules: ThrottleRules, *, now: datetime
) -> Lock | None:
    """Count one failed sign-in against the username and the address; the lock it starts, if any.

    A lock that starts is logged (warning) and written to the audit log as ``auth.lockout``.
    """
    _purge(session, rules, now=now)
    started = None
    for scope, key in _keys(username, address):
        row = _counter(session, scope, key, now=now)
        if row.window_started_at <= now - rules.window:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= rules.limit(scope):
            row.locked_until = now + rules.lockout
            row.failures, row.window_started_at = 0, now
            started = started or Lock(scope, row.locked_until)
            _log_lock(session, scope, key, username, address, rules, now=now)
    return started


def record_success(session: Session, username: str) -> None:
    """Clear the username's counter (its address keeps counting: one good account must not reset it)."""
    session.execute(
        delete(LoginThrottle).where(LoginThrottle.scope == USER, LoginThrottle.key == user_key(username))
    )


def _counter(session: Session, scope: str, key: str, *, now: datetime) -> LoginThrottle:
    insert_ignoring_duplicates(
        session,
        LoginThrottle,
        [
            {
                "scope": scope,
                "key": key,
                "failures": 0,
                "window_started_at": now,
                "last_failure_at": now,
                "locked_until": None,
            }
        ],
        ["scope", "key"],
    )
    query = (
        select(LoginThrottle)
        .where(LoginThrottle.scope == scope, LoginThrottle.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(query).scalar_one()


def _purge(session: Session, rules: ThrottleRules, *, now: datetime) -> None:
    """Forget counters whose window and lock are both over (the table stays as small as the attacks)."""
    stale = now - max(rules.window, rules.lockout)
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < stale,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        )
    )


def _log_lock(
    session: Session,
    scope: str,
    key: str,
    username: str,
    address: str | None,
    rules: ThrottleRules,
    *,
    now: datetime,
) -> None:
    minutes = int(rules.lockout.total_seconds() // 60)
    log.warning(
        "sign-in locked for %s %r for %d min after %d failures within %d min (last from %s)",
        scope,
        key,
        minutes,
        rules.limit(scope),
        int(rules.window.total_seconds() // 60),
        address or "unknown address",
    )
    session.add(
        AuditLog(
            at=now,
            user_id=None,
            username=username.strip()[:64],
            action="auth.lockout",
            object_type=scope,
            object_id=key[:64],
            reason=f"{rules.limit(scope)} failed sign-ins",
            remote_addr=(address or "")[:64],
            data={"locked_until": (now + rules.lockout).isoformat(), "minutes": minutes},
        )
    )
