"""The in-process event bus: live notifications (screen-pops, call updates) from the voice layers.

Publishing never fails the caller's path: a subscriber that raises is logged and the others still
get the event. The contact record in the database stays the source of truth; the bus only tells
who is listening right now (the agent's browser) that something happened. A transport across
processes (PostgreSQL LISTEN/NOTIFY, Redis) plugs in as another ``Bus`` implementation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

SCREEN_POP = "screen_pop"  # payload: agent (interface or id), call_id, linkedid, queue, state


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
