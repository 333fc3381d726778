"""The VIP list asked on every incoming call: read at most every ttl_s, kept through an outage."""

from __future__ import annotations

from datetime import datetime, timedelta

from callcenter.db import Database
from callcenter.services.callers import VipDirectory, ensure_caller


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_list_is_read_once_per_ttl(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        ensure_caller(session, "+8613800138000", now=now, tier="vip")
    clock = Clock(now)
    vips = VipDirectory(db, clock, ttl_s=30)
    assert vips.is_vip("+8613800138000") and not vips.is_vip("+8615000150000") and not vips.is_vip(None)
    with db.transaction() as session:
        ensure_caller(session, "+8615000150000", now=now, tier="vip")
    assert not vips.is_vip("+8615000150000")  # within the TTL: the list read before
    clock.now += timedelta(seconds=31)
    assert vips.is_vip("+8615000150000")


def test_an_outage_keeps_the_last_list(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        ensure_caller(session, "+8613800138000", now=now, tier="vip")
    clock = Clock(now)
    vips = VipDirectory(db, clock, ttl_s=30)
    assert vips.is_vip("+8613800138000")
    vips.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    clock.now += timedelta(seconds=60)
    assert vips.is_vip("+8613800138000")  # kept; retried later
    down = VipDirectory(vips.db, clock)
    assert not down.is_vip("+8613800138000")  # never read: non-VIP, the call goes on


def test_callers_do_not_wait_while_another_thread_refreshes_the_list(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        ensure_caller(session, "+8613800138000", now=now, tier="vip")
    clock = Clock(now)
    vips = VipDirectory(db, clock, ttl_s=30)
    assert vips.is_vip("+8613800138000")  # the first read
    clock.now += timedelta(seconds=31)
    vips._lock.acquire()  # as if another thread were reading the list right now
    try:
        assert vips.is_vip("+8613800138000")  # answered from the list in hand, at once
    finally:
        vips._lock.release()
    assert vips.is_vip("+8613800138000")  # and the next caller refreshes it
    assert vips._next_read is not None and vips._next_read > clock.now
