"""Derive a call's summary columns from its timeline: pure, so any order or replay of events agrees.

Each event kind has its own small reducer in one table (like wazo-call-logd's event lookup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class EventLike(Protocol):
    kind: str
    at: datetime
    seq: int
    node: str | None
    data: dict[str, Any]


@dataclass
class Summary:
    started_at: datetime | None = None
    ended_at: datetime | None = None
    ivr_path: list[str] = field(default_factory=list)
    last_node: str | None = None
    ivr_branch: str | None = None
    queue_name: str | None = None
    priority: int = 0
    disposition: str = "in_ivr"
    end_reason: str | None = None


def _node(summary: Summary, event: EventLike) -> None:
    if event.node:
        summary.ivr_path.append(event.node)


def _route(summary: Summary, event: EventLike) -> None:
    summary.queue_name = str(event.data.get("queue") or "") or None
    summary.ivr_branch = str(event.data.get("branch") or "") or None
    summary.priority = int(event.data.get("priority") or 0)
    if summary.disposition == "in_ivr":
        summary.disposition = "queued"


def _hangup_in_ivr(summary: Summary, event: EventLike) -> None:
    summary.ended_at = event.at
    summary.end_reason = str(event.data.get("reason") or "caller hung up")
    summary.disposition = "abandoned_in_ivr"  # even after a route: the caller never reached Queue()


def _ivr_end(summary: Summary, event: EventLike) -> None:
    summary.ended_at = event.at
    summary.end_reason = str(event.data.get("reason") or "")
    summary.disposition = "ended_in_ivr"


def _fallback(summary: Summary, event: EventLike) -> None:
    _route(summary, event)
    _error(summary, event)


def _error(summary: Summary, event: EventLike) -> None:
    summary.end_reason = str(event.data.get("error") or "error")[:255]


REDUCERS: dict[str, Callable[[Summary, EventLike], None]] = {
    "ivr.node": _node,
    "ivr.route": _route,
    "ivr.fallback": _fallback,
    "ivr.hangup": _hangup_in_ivr,
    "ivr.end": _ivr_end,
    "ivr.error": _error,
}


def ordered(events: Iterable[EventLike]) -> list[EventLike]:
    return sorted(events, key=lambda event: (event.at, event.seq))


def summarise(events: Iterable[EventLike]) -> Summary:
    """Fold the timeline (in time order) into the call's derived columns."""
    summary = Summary()
    for event in ordered(events):
        if summary.started_at is None or event.at < summary.started_at:
            summary.started_at = event.at
        if event.kind.startswith("ivr.") and event.node:
            summary.last_node = event.node
        reducer = REDUCERS.get(event.kind)
        if reducer is not None:
            reducer(summary, event)
    return summary
