"""The screen-pop ledger: every published pop, whether a console stream wrote it, and the missed ones.

A pop is noted by the publisher's process before it leaves (``note_published``): the agent it is for
(by the interface, Twilio identity or agent id it names), the call, and the event itself. The web
process whose stream wrote the pop marks it delivered. A pop nobody delivered within the grace time
(no console open for the agent, or the stream broken) is marked missed once — a conditional update,
so of several processes looking only one logs the WARNING — and the agent's console lists it.
A console that reconnects to another process reads what it missed from here (``events_after``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.models import ScreenPop
from callcenter.services.members import agent_for_interface

log = logging.getLogger(__name__)

GRACE_S = 15.0  # a stream reconnecting (retry 2 s) replays a pop well within this
MISSED_HOURS = 8  # the console lists the missed pops of this many hours


@dataclass(frozen=True)
class MissedPop:
    event_id: str
    agent_id: int | None
    call_id: int | None
    call_ref: str
    state: str
    caller: str
    caller_name: str
    queue: str
    published_at: datetime


def agent_of_pop(session: Session, payload: dict[str, Any]) -> int | None:
    """The agent a screen-pop names: its agent id, else the member interface or Twilio identity."""
    for name in ("agent_id", "agent"):
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    for name in ("agent_interface", "interface", "agent"):
        value = payload.get(name)
        if isinstance(value, str) and value:
            found = agent_for_interface(session, value)
            if found is not None:
                return found
    return None


def _call_id(payload: dict[str, Any]) -> int | None:
    value = payload.get("call_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def note_published(
    session: Session, event_id: str, payload: dict[str, Any], now: datetime, *, agent_id: int | None = None
) -> None:
    """Record a pop as it leaves its publisher (a replayed event id adds nothing)."""
    ref = payload.get("linkedid") or payload.get("call_sid") or ""
    row = {
        "event_id": event_id[:64],
        "agent_id": agent_id if agent_id is not None else agent_of_pop(session, payload),
        "call_id": _call_id(payload),
        "call_ref": str(ref)[:64],
        "state": str(payload.get("state") or "")[:16],
        "payload": payload,
        "published_at": now,
    }
    insert_ignoring_duplicates(session, ScreenPop, [row], ["event_id"])


def mark_delivered(
    session: Session, event_id: str, payload: dict[str, Any], agent_id: int, now: datetime
) -> None:
    """A console stream of ``agent_id`` wrote the pop. The publisher notes pops in the background, so
    the row may not be there yet: it is created here then (the publisher's note adds nothing). The
    first delivery counts; a pop marked missed is listed only while nobody delivered it."""
    note_published(session, event_id, payload, now, agent_id=agent_id)
    session.execute(
        update(ScreenPop)
        .where(ScreenPop.event_id == event_id, ScreenPop.delivered_at.is_(None))
        .values(delivered_at=now)
    )


def sweep_missed(
    session: Session, *, now: datetime, grace_s: float = GRACE_S, agent_id: int | None = None
) -> list[MissedPop]:
    """Mark the pops undelivered after the grace time as missed; returns those this call marked
    (each logged once as a WARNING with the agent and the call)."""
    cutoff = now - timedelta(seconds=grace_s)
    since = now - timedelta(hours=MISSED_HOURS)
    query = select(ScreenPop).where(
        ScreenPop.delivered_at.is_(None),
        ScreenPop.missed_at.is_(None),
        ScreenPop.published_at <= cutoff,
        ScreenPop.published_at >= since,
    )
    if agent_id is not None:
        query = query.where(ScreenPop.agent_id == agent_id)
    marked = []
    for row in session.execute(query.order_by(ScreenPop.id)).scalars():
        result = session.execute(
            update(ScreenPop)
            .where(ScreenPop.id == row.id, ScreenPop.delivered_at.is_(None), ScreenPop.missed_at.is_(None))
            .values(missed_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            continue  # another process marked it, or a stream delivered it meanwhile
        pop = _missed(row)
        log.warning(
            "screen-pop %s (%s) for agent %s, call %s (%s) was not delivered: no console stream took it",
            pop.event_id,
            pop.state,
            pop.agent_id if pop.agent_id is not None else row.payload.get("agent"),
            pop.call_id,
            pop.call_ref,
        )
        marked.append(pop)
    return marked


def missed_pops(session: Session, agent_id: int, *, now: datetime) -> list[MissedPop]:
    """The agent's pops of the last ``MISSED_HOURS`` that no stream delivered, newest first."""
    query = (
        select(ScreenPop)
        .where(
            ScreenPop.agent_id == agent_id,
            ScreenPop.missed_at.is_not(None),
            ScreenPop.delivered_at.is_(None),
            ScreenPop.published_at >= now - timedelta(hours=MISSED_HOURS),
        )
        .order_by(ScreenPop.published_at.desc(), ScreenPop.id.desc())
        .limit(50)
    )
    return [_missed(row) for row in session.execute(query).scalars()]


def events_after(
    session: Session, agent_id: int, last_event_id: str, *, now: datetime, max_age_s: float
) -> list[dict[str, Any]]:
    """The agent's pops published after ``last_event_id`` (and within ``max_age_s``), oldest first;
    [] when that id is unknown or not the agent's."""
    start = session.execute(
        select(ScreenPop.id).where(ScreenPop.event_id == last_event_id, ScreenPop.agent_id == agent_id)
    ).scalar_one_or_none()
    if start is None:
        return []
    rows = session.execute(
        select(ScreenPop.payload)
        .where(
            ScreenPop.agent_id == agent_id,
            ScreenPop.id > start,
            ScreenPop.published_at >= now - timedelta(seconds=max_age_s),
        )
        .order_by(ScreenPop.id)
        .limit(50)
    ).scalars()
    return [dict(payload) for payload in rows]


def _missed(row: ScreenPop) -> MissedPop:
    payload = row.payload or {}
    return MissedPop(
        row.event_id,
        row.agent_id,
        row.call_id,
        row.call_ref,
        row.state,
        str(payload.get("caller") or ""),
        str(payload.get("caller_name") or ""),
        str(payload.get("queue") or ""),
        row.published_at,
    )
