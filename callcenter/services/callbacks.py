"""Callback tasks created from what happened on a call (after hours, a queue callback, a voicemail,
a caller who hung up waiting in a queue).

A task is created from a ``callback.requested`` timeline entry, keyed by that entry's natural key,
so a replayed or duplicated report never creates a second task. Queue abandons (A9) have no such
entry: ``sweep_abandoned`` (the scheduler's ``sweep_queue_abandons`` job) finds them on the contact
record (disposition ``abandoned_in_queue``) and keys each task by its call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from callcenter.db import insert_ignoring_duplicates
from callcenter.models import Call, CallbackTask
from callcenter.models.callback import CALLBACK_KINDS

if TYPE_CHECKING:
    from callcenter.ivr.hours import BusinessHours
    from callcenter.services.calls import Entry

REQUESTED = "callback.requested"
ABANDONED_IN_QUEUE = "abandoned_in_queue"  # the caller hung up while waiting (not a queue timeout)
ABANDON_KEY = "queue-abandon"


def requested(
    *,
    kind: str,
    due_at: datetime,
    queue: str | None = None,
    enqueued_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The data of a ``callback.requested`` entry (JSON-safe)."""
    if kind not in CALLBACK_KINDS:
        raise ValueError(f"unknown callback kind {kind!r}")
    return {
        "callback_kind": kind,
        "due_at": due_at.isoformat(),
        "queue": queue,
        "enqueued_at": enqueued_at.isoformat() if enqueued_at else None,
        **extra,
    }


def task_key(call: Call, entry_key: str) -> str:
    return f"{call.channel}:{call.external_id}:{entry_key}"[:160]


def _task_row(
    call: Call,
    *,
    key: str,
    kind: str,
    due_at: datetime,
    now: datetime,
    data: dict[str, Any],
    note: str = "",
    queue: str | None = None,
    language: str = "zh",
    priority: int | None = None,
    enqueued_at: datetime | None = None,
) -> dict[str, Any]:
    """A task calling the caller of ``call`` back. A withheld or garbage number cannot be called
    back: the task is kept, visibly, for a human (``unreachable``, with a note saying why)."""
    reachable = bool(call.from_e164)
    note = note or ("" if reachable else "no callable number: " + (call.from_raw or "withheld"))
    return {
        "key": key,
        "kind": kind,
        "status": "pending" if reachable else "unreachable",
        "number_raw": call.from_raw,
        "number_e164": call.from_e164,
        "caller_id": call.caller_id,
        "call_id": call.id,
        "queue_name": queue or call.queue_name,
        "language": language,
        "priority": priority if priority is not None else call.priority or 0,
        "due_at": due_at,
        "enqueued_at": enqueued_at,
        "attempts": 0,
        "note": note[:1000],
        "data": data,
        "created_at": now,
        "updated_at": now,
    }


def create_from_entry(session: Session, call: Call, entry: Entry, now: datetime) -> None:
    data = entry.data
    enqueued = data.get("enqueued_at")
    row = _task_row(
        call,
        key=task_key(call, entry.key),
        kind=str(data["callback_kind"]),
        due_at=datetime.fromisoformat(str(data["due_at"])),
        now=now,
        data={"source": entry.source, "entry": entry.key},
        note=str(data.get("note") or ""),
        queue=data.get("queue"),
        language=str(data.get("language") or "zh"),
        priority=int(data.get("priority") or call.priority or 0),
        enqueued_at=datetime.fromisoformat(enqueued) if enqueued else None,
    )
    insert_ignoring_duplicates(session, CallbackTask, [row], ["key"])


@dataclass(frozen=True)
class AbandonSweep:
    created: int = 0  # missed-call tasks added (one per abandoned call)


def _followed_up() -> Any:
    """Whether the abandoned call's number called again later, or a later call with it reached an agent."""
    later = aliased(Call)
    called_again = and_(
        later.direction == "inbound",
        later.from_e164 == Call.from_e164,
        later.started_at > Call.started_at,
    )
    reached_agent = and_(
        later.disposition == "answered",
        or_(later.from_e164 == Call.from_e164, later.to_e164 == Call.from_e164),
        later.answered_at > Call.started_at,
    )
    return exists().where(later.id != Call.id, or_(called_again, reached_agent))


def sweep_abandoned(
    session: Session,
    now: datetime,
    *,
    hours: BusinessHours,
    grace: timedelta = timedelta(minutes=2),
    lookback: timedelta = timedelta(hours=24),
    limit: int = 500,
) -> AbandonSweep:
    """A ``missed_call`` task for each inbound call abandoned in a queue (A9).

    Looked at: calls that started within ``lookback`` and ended at least ``grace`` ago (a moment for
    the caller to call again), with no callback task of their own. Skipped: a number that called
    again after the abandon, or that reached an agent on a later call (either direction). A withheld
    number gets an ``unreachable`` task. The task's queue is the call's; it is due at once when the
    hotline is open, else at its next opening. Keyed by the call: a rerun creates nothing.
    """
    own_task = exists().where(CallbackTask.call_id == Call.id)
    ended = func.coalesce(Call.ended_at, Call.started_at)
    query = (
        select(Call)
        .where(
            Call.direction == "inbound",
            Call.disposition == ABANDONED_IN_QUEUE,
            Call.started_at >= now - lookback,
            ended <= now - grace,
            ~own_task,
            or_(Call.from_e164.is_(None), ~_followed_up()),
        )
        .order_by(Call.started_at, Call.id)
        .limit(limit)
    )
    calls = list(session.execute(query).scalars())
    if not calls:
        return AbandonSweep()
    due = hours.next_opening(now)
    rows = [
        _task_row(
            call,
            key=task_key(call, ABANDON_KEY),
            kind="missed_call",
            due_at=due,
            now=now,
            data={"source": "abandon_sweep", "abandoned_at": (call.ended_at or call.started_at).isoformat()},
        )
        for call in calls
    ]
    insert_ignoring_duplicates(session, CallbackTask, rows, ["key"])
    return AbandonSweep(created=len(rows))


def tasks_for_call(session: Session, call_id: int) -> list[CallbackTask]:
    query = select(CallbackTask).where(CallbackTask.call_id == call_id).order_by(CallbackTask.id)
    return list(session.execute(query).scalars())
