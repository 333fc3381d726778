"""Buses across processes: the database outbox (SQLite and PostgreSQL) and Redis pub/sub.

The Redis test runs where a Redis answers on 127.0.0.1:6379 and is skipped elsewhere: Redis is an
optional backend (a fresh machine has none; the outbox needs nothing but the database).
"""

from __future__ import annotations

import queue
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.db import Database
from callcenter.events import (
    EVENT_ID,
    SCREEN_POP,
    Event,
    FanOut,
    LocalBus,
    OutboxBus,
    OutboxRelay,
    RedisBus,
    RedisRelay,
    TrackedBus,
    outside_publisher,
    publisher_for,
    relays_for,
    stamped,
)
from callcenter.models import BusEvent
from tests.conftest import FIXED_NOW, make_settings

REDIS_URL = "redis://127.0.0.1:6379/15"


def _received(bus: LocalBus) -> queue.SimpleQueue[Event]:
    inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
    bus.subscribe(SCREEN_POP, inbox.put)
    return inbox


def test_events_get_one_id_before_they_leave_the_publisher() -> None:
    event = stamped(Event(SCREEN_POP, {"agent": 1}))
    assert len(event.payload[EVENT_ID]) == 32 and stamped(event) is event


def test_the_outbox_relays_new_events_in_order_and_prunes_old_ones(db: Database) -> None:
    clock = [FIXED_NOW]
    outbox = OutboxBus(db, lambda: clock[0])
    outbox.publish(Event(SCREEN_POP, {"agent": "PJSIP/1", "n": 0}))  # before the relay: history
    local = LocalBus()
    inbox = _received(local)
    relay = OutboxRelay(db, local, lambda: clock[0], poll_s=0.01, keep_s=60)
    assert relay.poll() == 0 and relay.ready.is_set()
    for n in (1, 2, 3):
        outbox.publish(Event(SCREEN_POP, {"agent": "PJSIP/1", "n": n}))
    assert relay.poll() == 3
    got = [inbox.get_nowait().payload["n"] for _ in range(3)]
    assert got == [1, 2, 3] and inbox.empty()
    assert relay.poll() == 0
    clock[0] = FIXED_NOW + timedelta(seconds=61)
    relay.prune()
    with db.read() as session:
        assert session.execute(select(func.count()).select_from(BusEvent)).scalar() == 0


def test_the_outbox_relay_thread(db: Database) -> None:
    local = LocalBus()
    inbox = _received(local)
    relay = OutboxRelay(db, local, lambda: FIXED_NOW, poll_s=0.01)
    relay.start()
    try:
        assert relay.ready.wait(5)
        OutboxBus(db, lambda: FIXED_NOW).publish(Event(SCREEN_POP, {"agent": 7}))
        assert inbox.get(timeout=5).payload["agent"] == 7
    finally:
        relay.stop()


def test_backends_by_setting(tmp_path: Path, db: Database) -> None:
    local = LocalBus()
    settings = make_settings(tmp_path, db.url)
    tracked = publisher_for(settings, db, local, lambda: FIXED_NOW)
    assert isinstance(tracked, TrackedBus) and tracked.inner is local
    outside = outside_publisher(settings, db, lambda: FIXED_NOW)
    assert isinstance(outside, TrackedBus) and isinstance(outside.inner, OutboxBus)
    assert isinstance(relays_for(settings, db, local, lambda: FIXED_NOW)[0], OutboxRelay)
    database = make_settings(tmp_path, db.url, console={"bus": "database"})
    fan_out = publisher_for(database, db, local, lambda: FIXED_NOW)
    assert isinstance(fan_out, TrackedBus) and isinstance(fan_out.inner, FanOut)
    redis = make_settings(tmp_path, db.url, console={"bus": "redis"})
    assert isinstance(relays_for(redis, db, local, lambda: FIXED_NOW)[0], RedisRelay)


def _redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_available(), reason="no Redis on 127.0.0.1:6379 (optional backend)")
def test_redis_pub_sub_carries_events_between_processes() -> None:
    local = LocalBus()
    inbox = _received(local)
    relay = RedisRelay(REDIS_URL, "callcenter.test", local)
    relay.start()
    publisher = RedisBus(REDIS_URL, "callcenter.test")
    try:
        assert relay.ready.wait(5)
        publisher._redis.publish("callcenter.test", b"not an event")  # ignored, logged
        publisher.publish(Event(SCREEN_POP, {"agent": "PJSIP/1001", "caller_name": "<张三>"}))
        event = inbox.get(timeout=5)
        assert event.payload["caller_name"] == "<张三>" and event.payload[EVENT_ID]
        assert inbox.empty()
    finally:
        relay.stop()
        publisher.close()


def test_a_redis_publisher_without_redis_does_not_fail_the_caller() -> None:
    publisher = RedisBus("redis://127.0.0.1:1/0", "callcenter.test")  # nothing listens on port 1
    publisher.publish(Event(SCREEN_POP, {"agent": 1}))  # logged, not raised
    publisher.close()


def test_a_row_committed_after_a_higher_id_is_still_relayed_once(db: Database) -> None:
    local = LocalBus()
    inbox = _received(local)
    relay = OutboxRelay(db, local, lambda: FIXED_NOW)
    relay.poll()  # the starting point: an empty outbox

    def insert(row_id: int) -> None:
        with db.transaction() as session:
            session.add(BusEvent(id=row_id, topic=SCREEN_POP, payload={"n": row_id}, created_at=FIXED_NOW))

    insert(5)
    assert relay.poll() == 1
    insert(3)  # its transaction began first but committed later
    assert relay.poll() == 1 and relay.poll() == 0
    assert [inbox.get_nowait().payload["n"] for _ in range(2)] == [5, 3]


def test_no_event_is_lost_across_a_prune(db: Database) -> None:
    """After a quiet spell the prune empties the outbox; the next id must still be new to the relay
    (SQLite reused the ids of deleted rows before the table became AUTOINCREMENT)."""
    clock = [FIXED_NOW]
    outbox = OutboxBus(db, lambda: clock[0])
    local = LocalBus()
    inbox = _received(local)
    relay = OutboxRelay(db, local, lambda: clock[0], keep_s=600)
    relay.poll()
    for n in range(3):
        outbox.publish(Event(SCREEN_POP, {"agent": "PJSIP/1001", "n": n}))
    assert relay.poll() == 3
    clock[0] = FIXED_NOW + timedelta(minutes=11)  # ten quiet minutes
    relay.prune()
    with db.read() as session:
        assert session.execute(select(func.count()).select_from(BusEvent)).scalar() == 0
    outbox.publish(Event(SCREEN_POP, {"agent": "PJSIP/1001", "n": "after"}))
    assert relay.poll() == 1
    assert [inbox.get_nowait().payload["n"] for _ in range(4)] == [0, 1, 2, "after"]


def test_the_relay_thread_keeps_relaying_after_its_prune(db: Database) -> None:
    clock = [FIXED_NOW]
    local = LocalBus()
    inbox = _received(local)
    relay = OutboxRelay(db, local, lambda: clock[0], poll_s=0.01, keep_s=600)
    relay.start()
    try:
        assert relay.ready.wait(5)
        outbox = OutboxBus(db, lambda: clock[0])
        outbox.publish(Event(SCREEN_POP, {"agent": 7, "n": 1}))
        assert inbox.get(timeout=5).payload["n"] == 1
        clock[0] = FIXED_NOW + timedelta(minutes=11)
        relay.prune_now()
        outbox.publish(Event(SCREEN_POP, {"agent": 7, "n": 2}))
        assert inbox.get(timeout=5).payload["n"] == 2
    finally:
        relay.stop()
