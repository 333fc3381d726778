"""Derive a call's summary columns from its timeline: pure, so any order or replay of events agrees.

Each event kind has its own small reducer in one table (like wazo-call-logd's event lookup). The
reducers of the AMI kinds (``queue.*``, ``agent.*``, ``call.*``) only collect facts; ``_finish`` turns
them into the answer time, wait and talk times, agent, transfers, hang-up side and disposition with
min/max/sorted rules, so the same events in any order, or twice, give the same summary.

Disposition, strongest first: ``answered`` (an agent connected); how the caller left the queue
without an agent: ``queue_timeout`` (no agent answered in time; Asterisk sends ``QueueCallerAbandon``
for it too, so an abandon with a timeout exit is not the caller's), ``queue_refused`` (Queue() refused
the join), ``queue_callback`` (left with a key for a callback), ``abandoned_in_queue`` (the caller hung
up while waiting); then ``abandoned_in_ivr`` (hung up in the IVR: final even after a route, the caller
never reached Queue()), ``ended_in_ivr`` (the IVR ended the call), ``queued`` (routed by the IVR or
joined a queue), ``in_ivr``; ``not_answered`` for an outbound call nobody picked up.

The call ends when the caller's side ends (the IVR ended it or the caller's channel hung up): agents'
and departments' channels hanging up (a transfer, a member rung in vain) do not end it.
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
    exits: list[_Item] = field(default_factory=list)  # how the caller left the queue (queue.exit)
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
    hangup_side: str | None = None  # caller | agent | ivr | transfer
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


def _queue_exit(summary: Summary, event: EventLike) -> None:
    if event.data.get("queue") and summary.queue_name is None:
        summary.queue_name = str(event.data["queue"])
    summary.facts.exits.append((event.at, event.seq, event.data))


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
    "queue.exit": _queue_exit,
}

# How Queue() let the caller go without an agent (``QUEUESTATUS``, the after-hours script's argument),
# and the exit a key press in the queue takes (``queue.exit`` with status CALLBACK).
TIMEOUT_EXITS = frozenset({"TIMEOUT", "LEAVEEMPTY", "LEAVEUNAVAIL", "QUEUE-TIMEOUT"})
REFUSED_EXITS = frozenset({"JOINEMPTY", "JOINUNAVAIL", "FULL"})
CALLBACK_EXIT = "CALLBACK"
# Dispositions of a call that reached a queue and left it without an agent. The first three mean
# the caller was left waiting or turned away: for an outbound call, an abandoned call (the dialler's
# lockout); queue_callback was the caller's own choice.
LEFT_WITHOUT_AGENT = ("abandoned_in_queue", "queue_timeout", "queue_refused")


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


def _ends_call(facts: _Facts, data: dict[str, Any]) -> bool:
    """Whether a hang-up ends the call: the caller's channel (or a channel-less report, Twilio's final
    status). An agent's or a department's channel hanging up (a transfer, a member rung in vain) does not."""
    if not data.get("channel"):
        return True
    return bool(data.get("first_leg")) or leg(str(data["channel"])) in facts.caller_legs


def _caller_legs(facts: _Facts, hangups: list[_Item]) -> None:
    """The linkedid channel is the caller's; with a Local channel, both of its halves are."""
    facts.caller_legs |= {leg(str(data["channel"])) for _, _, data in hangups if data.get("first_leg")}


def _queue_outcome(facts: _Facts) -> str | None:
    """How the caller left the queue without an agent, from its exits and abandons (order-free)."""
    statuses = {str(data.get("status") or "").upper() for _, _, data in facts.exits}
    if statuses & TIMEOUT_EXITS:
        return "queue_timeout"
    if statuses & REFUSED_EXITS:
        return "queue_refused"
    if CALLBACK_EXIT in statuses:
        return "queue_callback"
    if facts.abandons:
        return "abandoned_in_queue"
    return None


def _first_transfer(transfers: list[_Item], answered_at: datetime) -> _Item | None:
    """The transfer that took the call away from the agent who answered it."""
    return next(
        (
            item
            for item in transfers
            if item[0] >= answered_at and str(item[2].get("result") or "Success").lower() == "success"
        ),
        None,
    )


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
    if transfer := _first_transfer(_stable(facts.transfers), at):
        summary.talk_s = _seconds(at, transfer[0])  # the agent's part ends at the transfer
    elif completes and all(talk is not None for talk in talks):
        summary.talk_s = sum(talk or 0 for talk in talks)
    elif completes:
        summary.talk_s = _seconds(at, completes[-1][0])
    elif hangups:
        summary.talk_s = _seconds(at, hangups[-1][0])


def _who_hung_up(
    summary: Summary, outcome: str | None, completes: list[_Item], hangups: list[_Item]
) -> str | None:
    facts = summary.facts
    if summary.answered_at is not None and _first_transfer(_stable(facts.transfers), summary.answered_at):
        return "transfer"
    if completes:
        reason = str(completes[-1][2].get("reason") or "")
        return reason if reason in ("agent", "caller", "transfer") else None
    if facts.ivr_hangup or outcome == "abandoned_in_queue":
        return "caller"
    if facts.ivr_end:
        return "ivr"  # the IVR said goodbye (after hours, a voicemail, a queue timeout, a callback booked)
    sides = [_side(facts, data) for _, _, data in hangups]
    return next((side for side in sides if side), None)


def _transfers(summary: Summary) -> list[dict[str, Any]]:
    """The transfers as stored on the call; the one that took the call from the agent carries the
    talk time of the leg after it (the department's), up to the end of the call."""
    taken = (
        _first_transfer(_stable(summary.facts.transfers), summary.answered_at)
        if summary.answered_at is not None
        else None
    )
    listed = []
    for item in _stable(summary.facts.transfers):
        at, _, data = item
        row = {"at": at.isoformat(), **{key: value for key, value in data.items() if key != "uniqueid"}}
        if item == taken and summary.ended_at is not None:
            row["talk_s"] = _seconds(at, summary.ended_at)
        listed.append(row)
    return listed


# Final statuses of a call that was never answered (Twilio's status callback).
NOT_ANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})
END_REASONS = {
    "queue_timeout": "queue_timeout",
    "queue_callback": "queue_callback",
    "abandoned_in_queue": "caller hung up in the queue",
}


def _end_reason(facts: _Facts, outcome: str) -> str:
    if outcome == "queue_refused":
        refused = sorted(
            status
            for _, _, data in facts.exits
            if (status := str(data.get("status") or "").upper()) in REFUSED_EXITS
        )
        return f"queue_refused ({refused[0]})"
    return END_REASONS[outcome]


def _finish(summary: Summary) -> None:
    facts = summary.facts
    connects, completes, hangups = _stable(facts.connects), _stable(facts.completes), _stable(facts.hangups)
    _times(summary, connects, completes, hangups)
    _caller_legs(facts, hangups)
    ends = facts.ends + [at for at, _, data in hangups if _ends_call(facts, data)]
    summary.ended_at = max(ends) if ends else None
    summary.transfers = _transfers(summary)
    outcome = None if connects else _queue_outcome(facts)
    summary.hangup_side = _who_hung_up(summary, outcome, completes, hangups)
    if connects:
        summary.disposition = "answered"
    elif outcome is not None:
        summary.disposition = outcome
        summary.end_reason = _end_reason(facts, outcome)
    elif facts.ivr_hangup:
        summary.disposition = "abandoned_in_ivr"
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
