"""The leader lease: exactly one scheduler runs the jobs; the others wait and take over on expiry.

The lease is a row (``scheduler_lease``) updated inside a locking transaction (``FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two schedulers never both hold it. Each new holder
gets a larger ``token``; the dialler stamps its attempts with it and re-checks it when it claims
(a fencing token), so a paused old leader that wakes up after losing the lease claims nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import Database, insert_ignoring_duplicates
from callcenter.models import SchedulerLease

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def holder_name() -> str:
    """Who we are, for humans reading the lease row: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _row(session: Session, name: str) -> SchedulerLease:
    query = select(SchedulerLease).where(SchedulerLease.name == name).with_for_update()
    return session.execute(query).scalar_one()


class Lease:
    """One process's view of the lease ``name``; ``token`` is set while it holds it."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        ttl_s: float,
        name: str = SCHEDULER,
        holder: str | None = None,
    ) -> None:
        self.db, self.clock, self.ttl = db, clock, timedelta(seconds=ttl_s)
        self.name = name
        self.holder = holder or holder_name()
        self.token: int | None = None

    def acquire(self) -> int | None:
        """Take or renew the lease; the fencing token while held, None when another holds it."""
        now = self.clock()
        with self.db.transaction() as session:
            insert_ignoring_duplicates(
                session,
                SchedulerLease,
                [{"name": self.name, "holder": "", "token": 0, "expires_at": EPOCH, "renewed_at": now}],
                ["name"],
            )
            row = _row(session, self.name)
            if row.holder == self.holder and row.expires_at > now and row.token == self.token:
                row.expires_at, row.renewed_at = now + self.ttl, now
                return self.token
            if row.expires_at > now:
                if self.token is not None:
                    log.warning("scheduler lease lost to %s", row.holder)
                self.token = None
                return None
            row.holder, row.token = self.holder, row.token + 1
            row.expires_at, row.renewed_at = now + self.ttl, now
            self.token = row.token
        log.info("scheduler lease taken by %s (token %s)", self.holder, self.token)
        return self.token

    def release(self) -> None:
        """Give the lease up at once (a clean stop), so a waiting scheduler need not wait for expiry."""
        if self.token is None:
            return
        with self.db.transaction() as session:
            row = _row(session, self.name)
            if row.holder == self.holder and row.token == self.token:
                row.expires_at = EPOCH
        self.token = None

    def holds(self, session: Session, token: int) -> bool:
        """Inside a transaction: whether ``token`` is still the current, unexpired lease."""
        row = session.get(SchedulerLease, self.name)
        return row is not None and row.token == token and row.expires_at > self.clock()
