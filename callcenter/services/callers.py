"""The customer archive: callers keyed by E.164 number."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callcenter.db import Database, insert_ignoring_duplicates
from callcenter.models import Caller
from callcenter.phone import region_of

log = logging.getLogger(__name__)

_CALLER_BY_NUMBER = select(Caller).where(Caller.e164 == bindparam("e164"))  # built once (every new call)


def find_caller(session: Session, e164: str) -> Caller | None:
    return session.execute(_CALLER_BY_NUMBER, {"e164": e164}).scalar_one_or_none()


def ensure_caller(
    session: Session, e164: str, *, now: datetime, name: str = "", tier: str = "normal"
) -> Caller:
    """The caller with this number, created on first contact (safe under concurrent first calls)."""
    insert_ignoring_duplicates(
        session,
        Caller,
        [
            {
                "e164": e164,
                "name": name,
                "tier": tier,
                "region": region_of(e164, "zh"),
                "notes": "",
                "created_at": now,
                "updated_at": now,
            }
        ],
        ["e164"],
    )
    caller = find_caller(session, e164)
    assert caller is not None
    return caller


class VipDirectory:
    """Which numbers are VIP, asked on every incoming call without a database round trip per call.

    The set of VIP numbers (a short list: key accounts) is read at most every ``ttl_s`` seconds; a
    caller made VIP is served first from the next refresh on. If the database cannot be read, the last
    known set is kept (empty before the first read: callers are then treated as non-VIP) and retried
    at the next call after ``retry_s``. One thread refreshes while the others go on with the set they
    have; only before the first read do they wait for it.
    """

    def __init__(
        self, db: Database, clock: Callable[[], datetime], *, ttl_s: float = 30.0, retry_s: float = 5.0
    ) -> None:
        self.db, self.clock, self.ttl_s, self.retry_s = db, clock, ttl_s, retry_s
        self._numbers: frozenset[str] = frozenset()
        self._next_read: datetime | None = None
        self._lock = threading.Lock()

    def is_vip(self, e164: str | None) -> bool:
        if not e164:
            return False
        self._refresh_if_due()
        return e164 in self._numbers

    def _refresh_if_due(self) -> None:
        now = self.clock()
        if self._next_read is not None and now < self._next_read:
            return
        if not self._lock.acquire(blocking=self._next_read is None):
            return  # another thread is reading the list: the one in hand is at most a refresh old
        try:
            if self._next_read is not None and now < self._next_read:
                return  # another thread refreshed meanwhile
            try:
                with self.db.read() as session:
                    rows = session.execute(select(Caller.e164).where(Caller.tier == "vip")).scalars()
                    self._numbers = frozenset(rows)
                self._next_read = now + timedelta(seconds=self.ttl_s)
            except SQLAlchemyError as exc:
                log.warning("VIP list unavailable (%s); keeping the last known list", type(exc).__name__)
                self._next_read = now + timedelta(seconds=self.retry_s)
        finally:
            self._lock.release()
