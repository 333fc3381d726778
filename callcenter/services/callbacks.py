"""Callback tasks created from what happened on a call (after hours, a queue callback, a voicemail).

A task is created from a ``callback.requested`` timeline entry, keyed by that entry's natural key,
so a replayed or duplicated report never creates a second task.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.models import CallbackTask
from callcenter.models.callback import CALLBACK_KINDS

if TYPE_CHECKING:
    from callcenter.models import Call
    from callcenter.services.calls import Entry

REQUESTED = "callback.requested"


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


def create_from_entry(session: Session, call: Call, entry: Entry, now: datetime) -> None:
    data = entry.data
    enqueued = data.get("enqueued_at")
    # A withheld or garbage number cannot be called back: the task is kept, visibly, for a human.
    reachable = bool(call.from_e164)
    note = str(data.get("note") or "") or (
        "" if reachable else "no callable number: " + (call.from_raw or "withheld")
    )
    insert_ignoring_duplicates(
        session,
        CallbackTask,
        [
            {
                "key": task_key(call, entry.key),
                "kind": str(data["callback_kind"]),
                "status": "pending" if reachable else "unreachable",
                "number_raw": call.from_raw,
                "number_e164": call.from_e164,
                "caller_id": call.caller_id,
                "call_id": call.id,
                "queue_name": data.get("queue") or call.queue_name,
                "language": str(data.get("language") or "zh"),
                "priority": int(data.get("priority") or call.priority or 0),
                "due_at": datetime.fromisoformat(str(data["due_at"])),
                "enqueued_at": datetime.fromisoformat(enqueued) if enqueued else None,
                "attempts": 0,
                "note": note[:1000],
                "data": {"source": entry.source, "entry": entry.key},
                "created_at": now,
                "updated_at": now,
            }
        ],
        ["key"],
    )


def tasks_for_call(session: Session, call_id: int) -> list[CallbackTask]:
    query = select(CallbackTask).where(CallbackTask.call_id == call_id).order_by(CallbackTask.id)
    return list(session.execute(query).scalars())
