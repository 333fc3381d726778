"""Wrap-up (B14): a call is finished when its agent gives a reason category and a result note.

Answered calls left without them longer than the wrap-up window after they ended (or, when the end
never reached the record, after they were answered) are "unlogged": listed per agent until wrapped up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from callcenter.exceptions import NotFound
from callcenter.models import Agent, AgentPresence, Call
from callcenter.services import presence
from callcenter.services.presence import ConsoleError
from callcenter.settings import Console

MAX_NOTE = 2000


@dataclass(frozen=True)
class UnloggedCall:
    call_id: int
    agent_id: int
    agent_name: str
    from_e164: str | None
    caller_name: str
    queue: str
    answered_at: datetime
    ended_at: datetime | None


def wrap_up(
    session: Session,
    call_id: int,
    *,
    category: str,
    note: str,
    user_id: int,
    agent_id: int | None,
    may_wrap_any: bool,
    now: datetime,
    console: Console,
    zone: ZoneInfo,
) -> Call:
    """Record the wrap-up of ``call_id``; the agent's presence goes from wrap-up back to available
    (an agent still on the call stays ``on_call``: the call's end then makes them available).

    An agent wraps up the calls they took; ``may_wrap_any`` (team leaders) any call. Submitting again
    corrects the category and note and keeps the first wrap-up time.
    """
    category, note = category.strip(), note.strip()
    if category not in console.wrapup_categories:
        raise ConsoleError(f"unknown wrap-up category {category!r}")
    if not note:
        raise ConsoleError("a result note is required")
    if len(note) > MAX_NOTE:
        raise ConsoleError(f"the note is longer than {MAX_NOTE} characters")
    call = session.get(Call, call_id, with_for_update=True)
    if call is None:
        raise NotFound(f"call {call_id}")
    if not may_wrap_any and (agent_id is None or call.agent_id != agent_id):
        raise ConsoleError("this call was not taken by you")
    call.wrapup_category, call.wrapup_note = category, note
    if call.wrapped_up_at is None:
        call.wrapped_up_at, call.wrapped_up_by_id = now, user_id
    owner = call.agent_id
    if owner is not None:
        row = session.get(AgentPresence, owner)
        if row is not None and row.status == "wrap_up" and row.call_id in (None, call_id):
            presence.set_presence(
                session,
                owner,
                "available",
                now=now,
                console=console,
                zone=zone,
                key=f"{owner}:wrapped:{call_id}",
                by_user_id=user_id,
            )
    return call


def unlogged_calls(
    session: Session, *, now: datetime, window_min: int, agent_id: int | None = None, limit: int = 500
) -> list[UnloggedCall]:
    """Answered calls with no complete wrap-up, older than the window; one agent's or everyone's."""
    cutoff = now - timedelta(minutes=window_min)
    finished = func.coalesce(Call.ended_at, Call.answered_at)
    query = (
        select(Call, Agent.name)
        .join(Agent, Agent.id == Call.agent_id)
        .where(
            Call.answered_at.is_not(None),
            or_(Call.wrapup_category.is_(None), Call.wrapup_note.is_(None), Call.wrapup_note == ""),
            finished <= cutoff,
        )
        .order_by(finished, Call.id)
        .limit(limit)
    )
    if agent_id is not None:
        query = query.where(Call.agent_id == agent_id)
    result = []
    for call, name in session.execute(query).tuples():
        assert call.answered_at is not None and call.agent_id is not None
        result.append(
            UnloggedCall(
                call.id,
                call.agent_id,
                name,
                call.from_e164,
                call.caller_name,
                call.queue_name or "",
                call.answered_at,
                call.ended_at,
            )
        )
    return result


def call_connected(
    session: Session, agent_id: int, call_id: int, *, now: datetime, console: Console, zone: ZoneInfo
) -> str | None:
    """A call connected to the agent: presence ``on_call`` for it (talking is "not available").
    Named by the call, so the same connect reported twice changes it once. The new status, or None
    when nothing changed (a call wrapped up already)."""
    call = session.get(Call, call_id)
    if call is None or call.wrapped_up_at is not None:
        return None
    row = session.get(AgentPresence, agent_id)
    before = (row.status, row.call_id) if row is not None else None
    after = presence.set_presence(
        session,
        agent_id,
        "on_call",
        now=now,
        console=console,
        zone=zone,
        key=f"{agent_id}:call:{call_id}",
        call_id=call_id,
    )
    return "on_call" if (after.status, after.call_id) != before else None


def call_ended(
    session: Session, agent_id: int, call_id: int, *, now: datetime, console: Console, zone: ZoneInfo
) -> str | None:
    """The agent's call ended: ``wrap_up`` for it until the wrap-up is given, or ``available`` at once
    when it was given during the call. Only an agent on this call (or available: its connect never
    arrived) changes; one on break, offline or on another call stays so. The new status, or None."""
    row = session.get(AgentPresence, agent_id)
    status = row.status if row is not None else "offline"
    on_this_call = row is not None and status == "on_call" and row.call_id == call_id
    if not (on_this_call or status == "available"):
        return None
    call = session.get(Call, call_id)
    if call is None:
        return None
    if call.wrapped_up_at is not None:
        if not on_this_call:
            return None
        new, key, about = "available", f"{agent_id}:ended:{call_id}", None
    else:
        new, key, about = "wrap_up", f"{agent_id}:wrap:{call_id}", call_id
    before = (status, row.call_id if row is not None else None)
    after = presence.set_presence(
        session, agent_id, new, now=now, console=console, zone=zone, key=key, call_id=about
    )
    return new if (after.status, after.call_id) != before else None


def agents_on_call(session: Session, call_id: int) -> list[int]:
    """The agents whose presence is ``on_call`` for this call."""
    query = select(AgentPresence.agent_id).where(
        AgentPresence.status == "on_call", AgentPresence.call_id == call_id
    )
    return list(session.execute(query).scalars())
