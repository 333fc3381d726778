"""Screen-pops to the agents' browsers: one hub per web process, one Server-Sent Events stream per tab.

The hub listens on the process's LocalBus (fed by the relays from other processes) and hands each
SCREEN_POP to the streams of the agent it names, by set lookups on routing keys; the bus thread never
touches the database. Each stream's own thread builds the caller card (one short read) and writes it.

Threads: every open stream holds one server thread, idle in ``queue.get`` between events (werkzeug's
threaded server, or gunicorn's gthread worker with ``--threads`` sized for the agents it serves).
A stream ends after ``stream_max_s`` and the browser reconnects by itself, sending Last-Event-ID; the
hub keeps each agent's last few events so a pop published during the reconnect is replayed, on any
process (event ids come from the publisher). A comment line every ``heartbeat_s`` keeps proxies from
closing an idle stream and tells the server when the tab is gone.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from callcenter.events import EVENT_ID, PRESENCE, Event, stamped
from callcenter.services.screenpop import routing_keys

log = logging.getLogger(__name__)

BACKLOG = 20  # events kept per routing key for Last-Event-ID replay
REPLAY_MAX_AGE_S = 600.0
RETRY_MS = 2000  # the browser's reconnect delay


@dataclass(eq=False)
class Subscription:
    keys: frozenset[str]
    queue: queue.SimpleQueue[Event] = field(default_factory=queue.SimpleQueue)


class ScreenPopHub:
    def __init__(self, *, max_streams: int = 2000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_streams, self.clock = max_streams, clock
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = {}
        self._count = 0
        self._seq = itertools.count(1)
        self._recent: dict[str, deque[tuple[int, float, Event]]] = {}
        self.delivered = 0

    @property
    def streams(self) -> int:
        return self._count

    def on_event(self, event: Event) -> None:
        """The bus handler: remember the event and queue it for every stream of its agent."""
        event = stamped(event)
        keys = routing_keys(event.payload)
        if not keys:
            log.debug("screen-pop without an agent ignored: %s", event.payload.get(EVENT_ID))
            return
        item = (next(self._seq), self.clock(), event)
        targets: set[Subscription] = set()
        with self._lock:
            for key in keys:
                self._recent.setdefault(key, deque(maxlen=BACKLOG)).append(item)
                targets |= self._subs.get(key, set())
        for target in targets:
            target.queue.put(event)
        self.delivered += len(targets)

    def subscribe(
        self,
        keys: frozenset[str],
        last_event_id: str | None = None,
        backfill: Callable[[str], list[Event]] | None = None,
    ) -> Subscription | None:
        """A new stream for an agent's ``keys``, with the events it missed after ``last_event_id``
        already queued; None when the process has ``max_streams`` open. An id this process never saw
        (the previous stream was served by another process, or before a restart) is looked up with
        ``backfill`` (the screen-pop ledger in the database)."""
        sub = Subscription(keys)
        with self._lock:
            if self._count >= self.max_streams:
                return None
            for key in keys:
                self._subs.setdefault(key, set()).add(sub)
            self._count += 1
            missed = self._missed(keys, last_event_id) if last_event_id else []
        if missed is None and backfill is not None and last_event_id:
            try:
                missed = backfill(last_event_id)
            except Exception:
                log.warning("screen-pops after %s not read back", last_event_id, exc_info=True)
        for event in missed or []:
            sub.queue.put(event)
        return sub

    def _missed(self, keys: frozenset[str], last_event_id: str) -> list[Event] | None:
        items: dict[int, tuple[float, Event]] = {}
        for key in keys:
            for seq, at, event in self._recent.get(key, ()):
                items[seq] = (at, event)
        ordered = sorted(items.items())
        found = next(
            (i for i, (_, (_, ev)) in enumerate(ordered) if ev.payload.get(EVENT_ID) == last_event_id), None
        )
        if found is None:
            return None  # unknown id (too old, or seen by another process): ask the backfill
        oldest = self.clock() - REPLAY_MAX_AGE_S
        return [event for _, (at, event) in ordered[found + 1 :] if at >= oldest]

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            for key in sub.keys:
                subs = self._subs.get(key)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[key]
            self._count -= 1


def sse(event_id: str | None, name: str, data: dict[str, Any]) -> str:
    """One SSE message. json.dumps never emits a raw newline, so the data is one ``data:`` line."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


# A card shown before the call's IVR report was on record (another process, a slow writer, the
# spool) is read again this often, for this long, and sent again once the IVR branch is there.
REFRESH_EVERY_S = 1.0
REFRESH_FOR_S = 20.0


def _awaits_ivr(card: dict[str, Any]) -> bool:
    return not card.get("call", {}).get("ivr_branch")


def stream(
    hub: ScreenPopHub,
    sub: Subscription,
    build: Callable[[Event], dict[str, Any]],
    *,
    heartbeat_s: float,
    max_s: float,
    refresh: Callable[[Event], dict[str, Any]] | None = None,
    delivered: Callable[[Event], None] | None = None,
) -> Iterator[bytes]:
    """The body of one SSE response (bytes, written as they come); unsubscribes when the client goes
    away or the time is up. With ``refresh`` (a card read without side effects), a card that lacked
    the caller's IVR branch is sent again as soon as the branch is on record. ``delivered`` is told
    of each pop once the server has written it (the generator resumes only after the write of what
    it yielded succeeded; a broken stream never gets there). An event id already sent on this stream
    (a replay overlapping the live events) is not sent twice. A ``PRESENCE`` event (the call moved the
    agent) is sent as a ``presence`` message."""
    body = _Stream(build, refresh, delivered, heartbeat_s)
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
        deadline = time.monotonic() + max_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = sub.queue.get(timeout=body.wait(remaining))
            except queue.Empty:
                yield from body.idle()
                continue
            yield from body.on_event(event)
    finally:
        hub.unsubscribe(sub)


class _Stream:
    """What one SSE stream remembers between events: what it sent, when it last wrote, the card it
    may have to send again."""

    def __init__(
        self,
        build: Callable[[Event], dict[str, Any]],
        refresh: Callable[[Event], dict[str, Any]] | None,
        delivered: Callable[[Event], None] | None,
        heartbeat_s: float,
    ) -> None:
        self.build, self.refresh, self.delivered, self.heartbeat_s = build, refresh, delivered, heartbeat_s
        self.sent: set[str] = set()
        self.written = time.monotonic()
        self.waiting: tuple[Event, float] | None = None  # the card to refresh, until when

    def wait(self, remaining: float) -> float:
        wait = min(self.heartbeat_s - (time.monotonic() - self.written), remaining)
        if self.waiting is not None:
            wait = min(wait, REFRESH_EVERY_S)
        return max(wait, 0.0)

    def _write(self, message: str) -> bytes:
        self.written = time.monotonic()
        return message.encode()

    def idle(self) -> Iterator[bytes]:
        if self.waiting is not None and self.refresh is not None:
            event, until = self.waiting
            card = self.refresh(event)
            if not _awaits_ivr(card):
                yield self._write(sse(event.payload.get(EVENT_ID), "screenpop", card))
                self.waiting = None
            elif time.monotonic() >= until:
                self.waiting = None
        if time.monotonic() - self.written >= self.heartbeat_s:
            yield self._write(": keep-alive\n\n")

    def on_event(self, event: Event) -> Iterator[bytes]:
        if event.topic == PRESENCE:  # the call moved the agent: the console shows it at once
            status = {"status": event.payload.get("status"), "call_id": event.payload.get("call_id")}
            yield self._write(sse(None, "presence", status))
            return
        event_id = str(event.payload.get(EVENT_ID) or "")
        if event_id and event_id in self.sent:
            return
        card = self.build(event)
        yield self._write(sse(event_id or None, "screenpop", card))
        if event_id:
            self.sent.add(event_id)
        if self.delivered is not None:
            self.delivered(event)
        awaits = self.refresh is not None and _awaits_ivr(card)
        self.waiting = (event, self.written + REFRESH_FOR_S) if awaits else None
