"""View models and messages of the console pages (plain data for the templates)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import ShiftHandover, User
from callcenter.phone import mask
from callcenter.services.popledger import MissedPop
from callcenter.services.presence import ShiftWindow
from callcenter.services.wrapup import UnloggedCall
from web.context import web_context
from web.i18n import current_locale


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


def unlogged_row(row: UnloggedCall, *, reveal: bool) -> dict[str, Any]:
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
        "items": handover.items,
        "note": handover.note,
        "created": handover.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "acknowledged": handover.acknowledged_at is not None,
    }
