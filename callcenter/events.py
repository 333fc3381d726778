"""The in-process event bus: live notifications (screen-pops, call updates) from the voice layers.

Publishing never fails the caller's path: a subscriber that raises is logged and the others still
get the event. The contact record in the database stays the source of truth; the bus only tells
who is listening right now (the agent's browser) that something happened. A transport across
processes is another ``Bus``: the database outbox (``OutboxBus``) or Redis pub/sub (``RedisBus``), with a
relay in each web process feeding what arrives into its LocalBus (see docs/console.md).
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select

from callcenter.db import Database
from callcenter.models import BusEvent
from callcenter.services import popledger
from callcenter.settings import Settings

log = logging.getLogger(__name__)

SCREEN_POP = "screen_pop"  # payload: agent (interface or id), call_id, linkedid, queue, state
PRESENCE = "presence"  # payload: agent_id, status, call_id: the voice layer moved the agent


@dataclass(frozen=True)
class Event:
    topic: str
    payload: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Event], None]


class Bus(Protocol):
    def publish(self, event: Event) -> None: ...


class LocalBus:
    """Synchronous fan-out to the handlers subscribed in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Add ``handler`` for ``topic``; returns a function that removes it."""
        with self._lock:
            self._handlers.setdefault(topic, []).append(handler)

        def unsubscribe() -> None:
            with self._lock:
                handlers = self._handlers.get(topic, [])
                if handler in handlers:
                    handlers.remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            handlers = list(self._handlers.get(event.topic, ()))
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                log.exception("subscriber of %s failed; the others still get the event", event.topic)


# --- across processes ------------------------------------------------------------------------------
#
# Publishers in other processes (the AMI listener of `callcenter agi`, a gunicorn worker answering a
# Twilio webhook, `simulate-call --agent`) cannot reach a LocalBus. They publish to a shared transport
# instead, and every web process runs a relay that feeds what arrives into its own LocalBus, where the
# screen-pop streams listen. Each event gets its ``event_id`` before it leaves the publisher, so every
# web process names it the same (a browser reconnecting elsewhere resumes from Last-Event-ID).

EVENT_ID = "event_id"


def stamped(event: Event) -> Event:
    """The event with an ``event_id`` (kept if it has one)."""
    if event.payload.get(EVENT_ID):
        return event
    return Event(event.topic, {**event.payload, EVENT_ID: uuid.uuid4().hex})


class OutboxBus:
    """Publish by inserting into the ``bus_event`` table (SQLite or PostgreSQL): no broker needed."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db, self.clock = db, clock

    def publish(self, event: Event) -> None:
        event = stamped(event)
        try:
            with self.db.transaction() as session:
                row = BusEvent(topic=event.topic, payload=event.payload, created_at=self.clock())
                session.add(row)
        except Exception:
            log.exception("outbox: %s not published", event.topic)


class RedisBus:
    """Publish on a Redis pub/sub channel (fire and forget: nobody listening means nobody is told)."""

    def __init__(self, url: str, channel: str) -> None:
        import redis  # noqa: PLC0415  (only where Redis is configured)

        self.channel = channel
        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def publish(self, event: Event) -> None:
        event = stamped(event)
        message = json.dumps({"topic": event.topic, "payload": event.payload}, default=str)
        try:
            self._redis.publish(self.channel, message)
        except Exception:
            log.exception("redis: %s not published", event.topic)

    def close(self) -> None:
        self._redis.close()


class FanOut:
    """Publish to the shared transport only; the relay brings the event back into this process too."""

    def __init__(self, remote: Bus) -> None:
        self.remote = remote

    def publish(self, event: Event) -> None:
        self.remote.publish(stamped(event))


class TrackedBus:
    """A publisher that notes each screen-pop in the ledger (``screen_pop``) and marks it missed when
    no console stream delivered it within ``grace_s`` (a WARNING with the agent and the call). Other
    topics pass through. The pop goes out first; the ledger is written on a worker thread, so a slow
    or locked database never delays a pop or a webhook's answer (a failed write is logged)."""

    def __init__(
        self, inner: Bus, db: Database, clock: Callable[[], datetime], *, grace_s: float = popledger.GRACE_S
    ) -> None:
        self.inner, self.db, self.clock, self.grace_s = inner, db, clock, grace_s
        self._due: list[tuple[float, int, Event | None]] = []  # (when, order, pop to note | None: sweep)
        self._count = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def publish(self, event: Event) -> None:
        event = stamped(event)
        self.inner.publish(event)
        if event.topic == SCREEN_POP:
            self._schedule(time.monotonic(), event)

    def _schedule(self, when: float, job: Event | None) -> None:
        with self._cond:
            self._count += 1
            heapq.heappush(self._due, (when, self._count, job))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="screenpop-ledger", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, job = heapq.heappop(self._due)
            if job is None:
                self._sweep()
            else:
                self._note(job)

    def _note(self, event: Event) -> None:
        payload = event.payload
        try:
            with self.db.transaction() as session:
                popledger.note_published(session, str(payload[EVENT_ID]), payload, self.clock())
        except Exception:
            log.warning("screen-pop %s not noted in the ledger", payload.get(EVENT_ID), exc_info=True)
            return
        self._schedule(time.monotonic() + self.grace_s + 0.05, None)

    def _sweep(self) -> None:
        try:
            with self.db.transaction() as session:
                popledger.sweep_missed(session, now=self.clock(), grace_s=self.grace_s)
        except Exception as exc:
            log.warning("screen-pop ledger: missed pops not checked: %s", exc)


class Relay(Protocol):
    ready: threading.Event

    def start(self) -> None: ...

    def stop(self, timeout: float = 2.0) -> None: ...


class OutboxRelay:
    """Read new ``bus_event`` rows every ``poll_s`` and publish them into ``target``; prune old rows.

    Starts after the newest row present at start-up: events from before this process began are
    history, not news. A failed read is logged and retried at the next poll. Ids are handed out at
    insert but rows become visible at commit, so a row may appear after a higher id was read: each
    poll looks ``LOOKBACK`` ids behind the highest seen and skips the ids it relayed already.
    """

    LOOKBACK = 100

    def __init__(
        self,
        db: Database,
        target: LocalBus,
        clock: Callable[[], datetime],
        *,
        poll_s: float = 0.1,
        keep_s: int = 600,
    ) -> None:
        self.db, self.target, self.clock, self.poll_s, self.keep_s = db, target, clock, poll_s, keep_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_id: int | None = None
        self._floor = 0
        self._next_prune = 0.0
        self.ready = threading.Event()  # set once the starting point is read
        self._relayed: deque[int] = deque(maxlen=4 * self.LOOKBACK)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def poll(self) -> int:
        """Relay what arrived since the last poll; returns how many events."""
        with self.db.read() as session:
            if self._last_id is None:
                self._last_id = session.execute(select(func.max(BusEvent.id))).scalar() or 0
                self._floor = self._last_id  # rows up to here are history
                self.ready.set()
                return 0
            rows = session.execute(
                select(BusEvent.id, BusEvent.topic, BusEvent.payload)
                .where(BusEvent.id > self._last_id - self.LOOKBACK)
                .order_by(BusEvent.id)
                .limit(500)
            ).all()
        relayed = set(self._relayed)
        fresh = [row for row in rows if row[0] not in relayed and row[0] > self._floor]
        for row_id, topic, payload in fresh:
            self._last_id = max(self._last_id, row_id)
            self._relayed.append(row_id)
            self.target.publish(Event(topic, dict(payload)))
        return len(fresh)

    def prune(self) -> None:
        cutoff = self.clock() - timedelta(seconds=self.keep_s)
        with self.db.transaction() as session:
            session.execute(delete(BusEvent).where(BusEvent.created_at < cutoff))

    def prune_now(self) -> None:
        """Have the relay thread prune at its next turn (tests)."""
        self._next_prune = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.poll() == 0:
                    self._stop.wait(self.poll_s)
                if time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + 60
                    self.prune()
            except Exception as exc:
                log.warning("outbox relay: %s; retrying", exc)
                self._stop.wait(max(self.poll_s, 1.0))


class RedisRelay:
    """Subscribe to the Redis channel and publish what arrives into ``target``; reconnect on failure."""

    def __init__(self, url: str, channel: str, target: LocalBus) -> None:
        self.url, self.channel, self.target = url, channel, target
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # set while subscribed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="redis-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        import redis  # noqa: PLC0415

        delay = 0.5
        while not self._stop.is_set():
            client = redis.Redis.from_url(self.url, socket_connect_timeout=2.0)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self.channel)
                self.ready.set()
                delay = 0.5
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._deliver(message["data"])
                pubsub.close()
            except Exception as exc:
                self.ready.clear()
                log.warning("redis relay: %s; reconnecting in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
            finally:
                client.close()

    def _deliver(self, data: bytes | str) -> None:
        try:
            decoded = json.loads(data)
            event = Event(str(decoded["topic"]), dict(decoded["payload"]))
        except (ValueError, KeyError, TypeError):
            log.warning("redis relay: a message that is not an event was ignored")
            return
        self.target.publish(event)


def publisher_for(settings: Settings, db: Database, local: LocalBus, clock: Callable[[], datetime]) -> Bus:
    """What a process publishes to, by ``[console] bus``: the local bus, the outbox, or Redis."""
    backend = settings.console.bus
    if backend == "database":
        return TrackedBus(FanOut(OutboxBus(db, clock)), db, clock)
    if backend == "redis":
        return TrackedBus(
            FanOut(RedisBus(settings.console.redis_url, settings.console.redis_channel)), db, clock
        )
    return TrackedBus(local, db, clock)


def outside_publisher(settings: Settings, db: Database, clock: Callable[[], datetime]) -> Bus:
    """What a tool in another process publishes to: Redis when configured, else the database outbox
    (which every web process reads, whatever the backend but Redis)."""
    if settings.console.bus == "redis":
        return TrackedBus(RedisBus(settings.console.redis_url, settings.console.redis_channel), db, clock)
    return TrackedBus(OutboxBus(db, clock), db, clock)


def relays_for(
    settings: Settings, db: Database, local: LocalBus, clock: Callable[[], datetime]
) -> list[Relay]:
    """The relays a web process runs to hear other processes (not started)."""
    console = settings.console
    if console.bus == "redis":
        return [RedisRelay(console.redis_url, console.redis_channel, local)]
    return [OutboxRelay(db, local, clock, poll_s=console.outbox_poll_s, keep_s=console.outbox_keep_s)]
