"""Transfers of a consultation call to a specialist department (A4): what to send, and the log entry.

The voice layer does the sending (AMI Redirect, Twilio call update); this module decides where the
call goes and writes the transfer into the call's timeline as a ``call.transfer`` entry named by the
request's token, so a retried request neither transfers twice nor logs twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.exceptions import NotFound
from callcenter.models import Call, CallEvent
from callcenter.services.calls import CallSeen, Entry, record_call
from callcenter.services.presence import ConsoleError
from callcenter.settings import Department

TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CALLER_LEG_KINDS = ("agent.connect", "queue.join")


@dataclass(frozen=True)
class TransferPlan:
    call_id: int
    channel: str  # asterisk | twilio
    external_id: str  # linkedid / CallSid
    caller_channel: str  # Asterisk: the caller's channel to redirect; Twilio: the CallSid
    department: Department
    key: str  # the timeline entry's natural key

    @property
    def target(self) -> str:
        if self.channel == "twilio":
            return self.department.twilio_number
        return f"{self.department.asterisk_context},{self.department.asterisk_exten},1"


def entry_key(token: str) -> str:
    if not TOKEN.match(token):
        raise ConsoleError("bad transfer token")
    return f"web:transfer:{token}"


def _caller_channel(call: Call) -> str:
    """The caller's channel as the queue events named it (newest first)."""
    for event in sorted(call.events, key=lambda item: (item.at, item.seq, item.id), reverse=True):
        if event.kind in CALLER_LEG_KINDS and event.data.get("channel"):
            return str(event.data["channel"])
    return ""


def plan_transfer(
    session: Session,
    call_id: int,
    department: Department,
    *,
    token: str,
    agent_id: int | None,
    may_transfer_any: bool,
) -> TransferPlan:
    """Check that the call can go to ``department`` and say how. Raises ConsoleError or NotFound."""
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id}")
    if not may_transfer_any and (agent_id is None or call.agent_id != agent_id):
        raise ConsoleError("this call was not taken by you")
    if call.answered_at is None or call.ended_at is not None:
        raise ConsoleError("only a call in progress can be transferred")
    if call.channel == "twilio":
        if not department.twilio_number:
            raise ConsoleError(f"department {department.code} has no Twilio number")
        leg = call.external_id
    else:
        leg = _caller_channel(call)
        if not leg:
            raise ConsoleError("the caller's channel is not known yet")
    return TransferPlan(call.id, call.channel, call.external_id, leg, department, entry_key(token))


def already_done(session: Session, plan: TransferPlan) -> bool:
    query = select(CallEvent.id).where(CallEvent.call_id == plan.call_id, CallEvent.key == plan.key)
    return session.execute(query).first() is not None


def record_transfer(
    session: Session, plan: TransferPlan, *, by_user_id: int, now: datetime, region: str
) -> Call:
    """Log the transfer on the call (the timeline derives ``Call.transfers``); a replay adds nothing."""
    data: dict[str, Any] = {
        "type": "blind",
        "department": plan.department.code,
        "department_name": plan.department.name_zh,
        "target": plan.target,
        "channel": plan.caller_channel,
        "by_user_id": by_user_id,
        "result": "Success",
    }
    seen = CallSeen(channel=plan.channel, external_id=plan.external_id, at=now)
    return record_call(
        session, seen, [Entry(plan.key, "call.transfer", now, "web", None, 0, data)], region=region, now=now
    )
