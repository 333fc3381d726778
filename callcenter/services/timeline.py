"""Derive a call's summary columns from its timeline: pure, so any order or replay of events agrees.

Each event kind has its own small reducer in one table (like wazo-call-logd's event lookup). The
reducers of the AMI kinds (``queue.*``, ``agent.*``, ``call.*``) only collect facts; ``_finish`` turns
them into the answer time, wait and talk times, agent, transfers, hang-up side and disposition with
min/max/sorted rules, so the same events in any order, or twice, give the same summary.

Disposition, strongest first: ``abandoned_in_ivr`` (an IVR hang-up is final, a later AMI Hangup of
the same call does not change it), ``answered`` (an agent connected), ``abandoned_in_queue``,
``ended_in_ivr``, ``queued`` (routed by the IVR or joined a queue), ``in_ivr``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class EventLike(Protocol):
    """A timeline entry as the reducers read it (a stored row, or an entry not yet written)."""

    @property
    def kind(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def seq(self) -> int: ...
    @property
    def node(self) -> str | None: ...
    @property
    def data(self) -> dict[str, Any]: ...


_Item = tuple[datetime, int, dict[str, Any]]


@dataclass
class _Facts:
    """What the reducers collect; turned into the summary once every event is seen (order-free)."""

    routed: bool = False
    ivr_hangup: bool = False
    ivr_end: bool = False
    ends: list[datetime] = field(default_factory=list)
    joins: list[datetime] = field(default_factory=list)
    connects: list[_Item] = field(default_factory=list)
    completes: list[_Item] = field(default_factory=list)
    abandons: list[_Item] = field(default_factory=list)
    hangups: list[_Item] = field(default_factory=list)
    transfers: list[_Item] = field(default_factory=list)
    caller_legs: set[str] = field(default_factory=set)
    agent_legs: set[str] = field(default_factory=set)


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
    answered_at: datetime | None = None
    wait_s: int | None = None
    talk_s: int | None = None
    agent_interface: str | None = None
    agent_name: str | None = None
    hangup_side: str | None = None  # caller | agent | transfer
    transfers: list[dict[str, Any]] = field(default_factory=list)
    facts: _Facts = field(default_factory=_Facts, compare=False, repr=False)


def _node(summary: Summary, event: EventLike) -> None:
    if event.node:
        summary.ivr_path.append(event.node)


def _route(summary: Summary, event: EventLike) -> None:
    summary.queue_name = str(event.data.get("queue") or "") or None
    summary.ivr_branch = str(event.data.get("branch") or "") or None
    summary.priority = int(event.data.get("priority") or 0)
    summary.facts.routed = True


def _hangup_in_ivr(summary: Summary, event: EventLike) -> None:
    summary.facts.ends.append(event.at)
    summary.end_reason = str(event.data.get("reason") or "caller hung up")
    summary.facts.ivr_hangup = True  # even after a route: the caller never reached Queue()


def _ivr_end(summary: Summary, event: EventLike) -> None:
    summary.facts.ends.append(event.at)
    summary.end_reason = str(event.data.get("reason") or "")
    summary.facts.ivr_end = True


def _fallback(summary: Summary, event: EventLike) -> None:
    _route(summary, event)
    _error(summary, event)


def _error(summary: Summary, event: EventLike) -> None:
    summary.end_reason = str(event.data.get("error") or "error")[:255]


def leg(channel: str) -> str:
    """A channel without its Local half (``;1``/``;2``) or its sequence suffix: one per leg."""
    return channel.split(";", 1)[0]


def _legs(summary: Summary, event: EventLike) -> None:
    if event.data.get("channel"):
        summary.facts.caller_legs.add(leg(str(event.data["channel"])))
    if event.data.get("dest_channel"):
        summary.facts.agent_legs.add(leg(str(event.data["dest_channel"])))


def _queue_join(summary: Summary, event: EventLike) -> None:
    if event.data.get("queue"):
        summary.queue_name = str(event.data["queue"])
    summary.facts.joins.append(event.at)
    _legs(summary, event)


def _agent_ringing(summary: Summary, event: EventLike) -> None:
    _legs(summary, event)


def _agent_connect(summary: Summary, event: EventLike) -> None:
    summary.facts.connects.append((event.at, event.seq, event.data))
    _legs(summary, event)


def _agent_complete(summary: Summary, event: EventLike) -> None:
    summary.facts.completes.append((event.at, event.seq, event.data))
    _legs(summary, event)


def _queue_abandon(summary: Summary, event: EventLike) -> None:
    if event.data.get("queue") and summary.queue_name is None:
        summary.queue_name = str(event.data["queue"])
    summary.facts.abandons.append((event.at, event.seq, event.data))
    _legs(summary, event)


def _call_hangup(summary: Summary, event: EventLike) -> None:
    summary.facts.hangups.append((event.at, event.seq, event.data))


def _transfer(summary: Summary, event: EventLike) -> None:
    summary.facts.transfers.append((event.at, event.seq, event.data))


REDUCERS: dict[str, Callable[[Summary, EventLike], None]] = {
    "ivr.node": _node,
    "ivr.route": _route,
    "ivr.fallback": _fallback,
    "ivr.hangup": _hangup_in_ivr,
    "ivr.end": _ivr_end,
    "ivr.error": _error,
    "queue.join": _queue_join,
    "queue.abandon": _queue_abandon,
    "agent.ringing": _agent_ringing,
    "agent.connect": _agent_connect,
    "agent.complete": _agent_complete,
    "call.hangup": _call_hangup,
    "call.transfer": _transfer,
}


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds()))


def _stable(items: list[_Item]) -> list[_Item]:
    """Sorted by time, then content (arrival order never matters); an identical event counts once."""
    unique = {
        (at, seq, json.dumps(data, sort_keys=True, default=str)): (at, seq, data) for at, seq, data in items
    }
    return [unique[key] for key in sorted(unique)]


def _side(facts: _Facts, data: dict[str, Any]) -> str | None:
    channel = leg(str(data.get("channel") or ""))
    if channel in facts.agent_legs:
        return "agent"
    if channel in facts.caller_legs or data.get("first_leg"):
        return "caller"
    return None


def _times(summary: Summary, connects: list[_Item], completes: list[_Item], hangups: list[_Item]) -> None:
    facts = summary.facts
    abandons = _stable(facts.abandons)
    joined = min(facts.joins) if facts.joins else None
    first = connects[0] if connects else abandons[0] if abandons else None
    if first is not None:
        hold = _int(first[2].get("holdtime"))
        summary.wait_s = hold if hold is not None else (_seconds(joined, first[0]) if joined else None)
    if not connects:
        return
    at, _, data = connects[0]
    summary.answered_at = at
    summary.agent_interface = str(data.get("interface") or "") or None
    summary.agent_name = str(data.get("member") or "") or None
    talks = [_int(data.get("talktime")) for _, _, data in completes]
    if completes and all(talk is not None for talk in talks):
        summary.talk_s = sum(talk or 0 for talk in talks)
    elif completes:
        summary.talk_s = _seconds(at, completes[-1][0])
    elif hangups:
        summary.talk_s = _seconds(at, hangups[-1][0])


def _who_hung_up(summary: Summary, completes: list[_Item], hangups: list[_Item]) -> str | None:
    if completes:
        reason = str(completes[-1][2].get("reason") or "")
        return reason if reason in ("agent", "caller", "transfer") else None
    if summary.facts.abandons:
        return "caller"
    sides = [_side(summary.facts, data) for _, _, data in hangups]
    return next((side for side in sides if side), None)


# Final statuses of a call that was never answered (Twilio's status callback).
NOT_ANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})


def _finish(summary: Summary) -> None:
    facts = summary.facts
    connects, completes, hangups = _stable(facts.connects), _stable(facts.completes), _stable(facts.hangups)
    _times(summary, connects, completes, hangups)
    summary.transfers = [
        {"at": at.isoformat(), **{key: value for key, value in data.items() if key != "uniqueid"}}
        for at, _, data in _stable(facts.transfers)
    ]
    ends = facts.ends + [at for at, _, _ in hangups]
    summary.ended_at = max(ends) if ends else None
    summary.hangup_side = _who_hung_up(summary, completes, hangups)
    if facts.ivr_hangup:
        summary.disposition = "abandoned_in_ivr"
    elif connects:
        summary.disposition = "answered"
    elif facts.abandons:
        summary.disposition = "abandoned_in_queue"
        summary.end_reason = summary.end_reason or "caller hung up in the queue"
    elif facts.ivr_end:
        summary.disposition = "ended_in_ivr"
    elif facts.routed or facts.joins:
        summary.disposition = "queued"
    elif unanswered := next((d["status"] for _, _, d in hangups if d.get("status") in NOT_ANSWERED), None):
        summary.disposition = "not_answered"  # an outbound call the callee never picked up
        summary.end_reason = summary.end_reason or str(unanswered)


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
    _finish(summary)
    return summary
