"""View models and messages of the console pages (plain data for the templates)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from callcenter.models import Agent, Call, ShiftHandover, User
from callcenter.phone import mask
from callcenter.services.popledger import MissedPop
from callcenter.services.presence import ShiftWindow
from callcenter.services.wrapup import UnloggedCall
from web import case_labels, labels
from web.context import web_context
from web.i18n import current_locale
from web.labels import label


def _(text: str) -> str:
    return str(gettext(text))


def status_label(status: str) -> str:
    labels = {
        "available": _("Available"),
        "break": _("On break"),
        "on_call": _("On a call"),
        "wrap_up": _("Wrap-up"),
        "offline": _("Offline"),
    }
    return labels.get(status, status)


def wrapup_message(problem: str) -> str:
    if problem.startswith("unknown wrap-up category"):
        return _("Choose a reason category.")
    if problem.startswith("a result note"):
        return _("Write the result of the call.")
    if problem.startswith("this call was not taken"):
        return _("This call was not taken by you.")
    return _("The wrap-up was not saved.")


def handover_message(problem: str) -> str:
    if "acknowledged" in problem:
        return _("This handover was acknowledged already.")
    if "someone else" in problem:
        return _("The receiving person must be someone else.")
    return _("The handover was not saved.")


def waiting_query(*, now: datetime, window_min: int, agent_id: int | None) -> Select[tuple[Call]]:
    """Answered calls without a complete wrap-up that finished ``window_min`` minutes ago or earlier
    (0: every call waiting for one, the one in progress included), oldest first; one agent's or all.

    The same rule as ``wrapup.unlogged_calls``, as a query the pages can page."""
    finished = func.coalesce(Call.ended_at, Call.answered_at)
    query = (
        select(Call)
        .where(
            Call.answered_at.is_not(None),
            Call.agent_id.is_not(None),
            or_(Call.wrapup_category.is_(None), Call.wrapup_note.is_(None), Call.wrapup_note == ""),
            finished <= now - timedelta(minutes=window_min),
        )
        .order_by(finished, Call.id)
    )
    return query if agent_id is None else query.where(Call.agent_id == agent_id)


def waiting_calls(session: Session, calls: Sequence[Call]) -> list[UnloggedCall]:
    """A page of ``waiting_query`` as the service's rows (with the agents' names)."""
    ids = {call.agent_id for call in calls if call.agent_id is not None}
    rows = session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids))).tuples()
    names = {agent_id: name for agent_id, name in rows}
    return [
        UnloggedCall(
            call.id,
            call.agent_id or 0,
            names.get(call.agent_id or 0, ""),
            call.from_e164,
            call.caller_name,
            call.queue_name or "",
            call.answered_at or call.started_at,
            call.ended_at,
        )
        for call in calls
    ]


def category_choices(codes: Sequence[str]) -> list[tuple[str, str]]:
    """The wrap-up categories of the settings with their display names."""
    return [(code, label(labels.WRAPUP_CATEGORIES, code)) for code in codes]


def item_view(item: dict[str, Any]) -> dict[str, Any]:
    """A shift item (case or callback task) with its type and status by their display names."""
    if item.get("kind") == "callback":
        kind, status = labels.CALLBACK_KINDS, labels.CALLBACK_STATUSES
    else:
        kind, status = case_labels.CASE_TYPES, case_labels.STATUSES
    return {
        **item,
        "type": label(kind, item.get("type")),
        "status": label(status, item.get("status")),
    }


def unlogged_row(
    row: UnloggedCall, *, reveal: bool, now: datetime | None = None, window_min: int = 0
) -> dict[str, Any]:
    settings = web_context().settings
    zone, region = settings.zone, settings.organisation.phone_region
    number = row.from_e164 or ""
    return {
        "call_id": row.call_id,
        "agent": row.agent_name,
        "caller_name": row.caller_name,
        "number": number if reveal else mask(number, region),
        "queue": row.queue,
        "answered": row.answered_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "ended": row.ended_at.astimezone(zone).strftime("%H:%M") if row.ended_at else "",
        "in_progress": row.ended_at is None,
        # past the wrap-up window: the call counts as unlogged
        "late": now is not None and (row.ended_at or row.answered_at) <= now - timedelta(minutes=window_min),
    }


def missed_pop_row(pop: MissedPop) -> dict[str, Any]:
    """A screen-pop no console stream delivered (the agent's own call: the number in full)."""
    zone = web_context().settings.zone
    states = {"ringing": _("Ringing"), "connected": _("Connected")}
    return {
        "at": pop.published_at.astimezone(zone).strftime("%m-%d %H:%M:%S"),
        "state": states.get(pop.state, pop.state),
        "caller": pop.caller,
        "caller_name": pop.caller_name,
        "queue": pop.queue,
        "call_id": pop.call_id,
    }


def window_view(window: ShiftWindow) -> dict[str, str]:
    zh = current_locale() == "zh"
    return {
        "day": window.day.isoformat(),
        "code": window.code,
        "name": window.shift.name_zh if zh else window.shift.name_en,
        "start": window.start.strftime("%H:%M"),
        "end": window.end.strftime("%H:%M"),
    }


def people(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(
        select(User.id, User.display_name, User.username).where(User.active.is_(True)).order_by(User.username)
    )
    return [(user_id, display or username) for user_id, display, username in rows.tuples()]


def handover_view(handover: ShiftHandover) -> dict[str, Any]:
    settings = web_context().settings
    zone = settings.zone
    session_names: dict[int, str] = {}
    from web.context import reading  # noqa: PLC0415

    ids = [i for i in (handover.on_duty_id, handover.receiving_id) if i is not None]
    if ids:
        with reading() as session:
            for user_id, display, username in session.execute(
                select(User.id, User.display_name, User.username).where(User.id.in_(ids))
            ).tuples():
                session_names[user_id] = display or username
    return {
        "id": handover.id,
        "day": handover.shift_day.isoformat(),
        "shift": handover.shift_code,
        "team": handover.team,
        "on_duty": session_names.get(handover.on_duty_id or 0, ""),
        "receiving": session_names.get(handover.receiving_id or 0, ""),
        "receiving_id": handover.receiving_id,
        "pending_count": handover.pending_count,
        "items": [item_view(item) for item in handover.items],
        "note": handover.note,
        "created": handover.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "acknowledged": handover.acknowledged_at is not None,
    }
