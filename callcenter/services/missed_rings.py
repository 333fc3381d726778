"""Missed agent rings (REQUIREMENTS A10): a queue rang an agent who did not answer.

Each ``agent.missed`` timeline entry (AMI ``AgentRingNoAnswer``) becomes one ``MissedRing`` row against
the agent and the call, keyed by the entry's natural key: a replayed event adds nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.models import MissedRing
from callcenter.services.members import agent_for_interface

if TYPE_CHECKING:
    from callcenter.models import Call
    from callcenter.services.calls import Entry

MISSED = "agent.missed"


def register_from_entry(session: Session, call: Call, entry: Entry, now: datetime) -> None:
    data = entry.data
    interface = str(data.get("interface") or "")
    ring_s = data.get("ring_s")
    insert_ignoring_duplicates(
        session,
        MissedRing,
        [
            {
                "key": f"{call.channel}:{call.external_id}:{entry.key}"[:160],
                "call_id": call.id,
                "agent_id": agent_for_interface(session, interface) if interface else None,
                "interface": interface[:64],
                "member": str(data.get("member") or "")[:64],
                "queue_name": str(data.get("queue") or "")[:64] or None,
                "ring_s": float(ring_s) if isinstance(ring_s, int | float) else None,
                "at": entry.at,
                "created_at": now,
            }
        ],
        ["key"],
    )
