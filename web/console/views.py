"""The console's routes: thin shells around the presence, screen-pop, wrap-up, transfer and shift services.

Forms post with their CSRF token; the console page's script sends the same forms with fetch and asks
for JSON (``Accept: application/json``), so the open SSE stream and the caller card stay on screen.
Without the script the forms still work (redirect back with a message).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session

from callcenter.events import EVENT_ID, SCREEN_POP, Event
from callcenter.exceptions import NotFound
from callcenter.models import Agent, AgentPresence
from callcenter.services import popledger, presence, screenpop, shifts, transfers, wrapup
from callcenter.services.presence import CHOOSABLE, ConsoleError
from callcenter.services.screenpop import AgentView
from callcenter.voice.ami.client import AmiError
from callcenter.voice.ami.redirect import redirect as ami_redirect
from callcenter.voice.ami.redirect import short_connection
from callcenter.voice.twilio.rest import OutboundError, make_client
from callcenter.voice.twilio.transfer import transfer_call
from web import labels
from web.auth import roles_required
from web.console import push_presence, runtime
from web.console.hub import REPLAY_MAX_AGE_S, stream
from web.console.present import (
    category_choices,
    handover_message,
    handover_view,
    item_view,
    missed_pop_row,
    people,
    status_label,
    unlogged_row,
    waiting_calls,
    waiting_query,
    window_view,
    wrapup_message,
)
from web.context import reading, web_context
from web.i18n import current_locale
from web.paging import mapped, paginate
from web.presenters import FULL_NUMBER_ROLES

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/console")

AGENT_ROLES = ("agent_consultation", "agent_complaint", "callback_specialist", "team_leader", "supervisor")
LEAD_ROLES = ("team_leader", "supervisor")
TRANSFER_ROLES = ("agent_consultation", "team_leader", "supervisor")
WAITING_PAGE = 20  # the console's calls waiting for wrap-up
UNLOGGED_PAGE = 50
WAITING_ARG = "waiting"  # its page's query argument


def _now() -> datetime:
    return runtime().clock()


def _agent() -> AgentView | None:
    with reading() as session:
        agent = presence.agent_of_user(session, int(current_user.id))
        if agent is None or not agent.active:
            return None
        return AgentView(agent.id, agent.name, agent.extension, agent.twilio_identity)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _done(message: str, code: int = 200, **extra: Any) -> ResponseReturnValue:
    if _wants_json():
        return jsonify({"ok": code < 400, "message": message, **extra}), code
    flash(message, "error" if code >= 400 else "info")
    return redirect(url_for("console.index"))


def _shift_name(code: str | None, locale: str) -> str | None:
    for shift in web_context().settings.console.shifts:
        if shift.code == code:
            return shift.name_zh if locale == "zh" else shift.name_en
    return code


def _is_lead() -> bool:
    return bool(current_user.has_role(*LEAD_ROLES))


# --- the page and the stream ---------------------------------------------------------------------


@bp.get("")
@roles_required(*AGENT_ROLES)
def index() -> ResponseReturnValue:
    settings, now = web_context().settings, _now()
    agent = _agent()
    missed: list[popledger.MissedPop] = []
    if agent is not None:
        with web_context().db.transaction() as session:  # pops nobody took are marked (and logged) now
            popledger.sweep_missed(session, now=now, agent_id=agent.id)
            missed = popledger.missed_pops(session, agent.id, now=now)
    window_min = settings.console.wrapup_window_min
    with reading() as session:
        state = presence.current(session, agent.id) if agent else None
        # The agent's calls waiting for wrap-up (those past the window are unlogged), each with its
        # form: an agent who had no console open during the call wraps up here.
        waiting = None
        if agent is not None:
            page = paginate(
                session,
                waiting_query(now=now, window_min=0, agent_id=agent.id),
                size=WAITING_PAGE,
                arg=WAITING_ARG,
            )
            rows = waiting_calls(session, list(page.items))
            waiting = mapped(
                page, [unlogged_row(row, reveal=True, now=now, window_min=window_min) for row in rows]
            )
        handover = shifts.latest_handover(session, before=now)
        latest = (
            handover_view(handover)
            if handover is not None and now - handover.created_at < timedelta(hours=24)
            else None
        )
    locale = current_locale()
    return render_template(
        "console/index.html",
        agent=agent,
        status=state.status if state else "offline",
        late=bool(state and state.late),
        shift_name=_shift_name(state.shift_code if state else None, locale),
        choosable=CHOOSABLE,
        categories=category_choices(settings.console.wrapup_categories),
        departments=[(d.code, d.name_zh if locale == "zh" else d.name_en) for d in settings.departments],
        waiting=waiting,
        window=window_min,
        missed_pops=[missed_pop_row(pop) for pop in missed],
        handover=latest,
        script=screenpop.opening_script(settings, agent.name if agent else current_user.display_name),
        locale=locale,
        ivr_nodes={node: str(name) for node, name in labels.IVR_NODES.items()},  # the card's IVR path
    )


@bp.get("/events")
@roles_required(*AGENT_ROLES)
def events() -> ResponseReturnValue:
    """The agent's screen-pop stream (text/event-stream)."""
    agent = _agent()
    if agent is None:
        abort(404)
    console = runtime()
    console.ensure_relays()
    console.wait_ready(2.0)  # the relays' starting point is read: nothing published from now is missed
    context, settings, clock = console.context, console.context.settings, console.clock

    def backfill(last_event_id: str) -> list[Event]:
        """What the agent missed after ``last_event_id`` when another process served that stream."""
        with context.db.read() as session:
            payloads = popledger.events_after(
                session, agent.id, last_event_id, now=clock(), max_age_s=REPLAY_MAX_AGE_S
            )
        return [Event(SCREEN_POP, payload) for payload in payloads]

    sub = console.hub.subscribe(
        screenpop.agent_keys(agent), request.headers.get("Last-Event-ID"), backfill=backfill
    )
    if sub is None:
        return Response("too many streams", status=503, headers={"Retry-After": "5"})

    def build(event: Event) -> dict[str, Any]:
        """The caller card (read only: presence and wrap-up follow the call in the voice layers)."""
        payload = event.payload
        try:
            with context.db.read() as session:  # no write lock: many cards are read at once
                return screenpop.card(session, settings, agent, payload, clock())
        except Exception:  # the database is down: the event's own fields still pop
            log.exception("screen-pop card for agent %s built from the event alone", agent.id)
            return {
                "event_id": payload.get("event_id"),
                "state": payload.get("state") or "ringing",
                "call": {"id": payload.get("call_id"), "queue": payload.get("queue") or "", "ivr_path": []},
                "caller": {
                    "name": str(payload.get("caller_name") or ""),
                    "number": str(payload.get("caller") or ""),
                },
                "last_calls": [],
                "open_cases": [],
                "script": screenpop.opening_script(settings, agent.name),
                "case_url": None,
            }

    def refresh(event: Event) -> dict[str, Any]:
        """The card again, read only (the IVR report may have landed since it was built)."""
        try:
            with context.db.read() as session:
                return screenpop.card(session, settings, agent, event.payload, clock())
        except Exception:
            log.warning("screen-pop card for agent %s could not be read again", agent.id, exc_info=True)
            return {}

    def delivered(event: Event) -> None:
        event_id = event.payload.get(EVENT_ID)
        if not event_id:
            return
        try:
            with context.db.transaction() as session:
                popledger.mark_delivered(session, str(event_id), event.payload, agent.id, clock())
        except Exception:
            log.warning("screen-pop %s delivery not recorded", event_id, exc_info=True)

    body = stream(
        console.hub,
        sub,
        build,
        heartbeat_s=settings.console.heartbeat_s,
        max_s=settings.console.stream_max_s,
        refresh=refresh,
        delivered=delivered,
    )
    headers = {
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        "Connection": "keep-alive",
    }
    return Response(body, mimetype="text/event-stream", headers=headers, direct_passthrough=True)


# --- presence, wrap-up, transfer -------------------------------------------------------------------


@bp.post("/presence")
@roles_required(*AGENT_ROLES)
def set_presence() -> ResponseReturnValue:
    status = request.form.get("status", "")
    agent = _agent()
    if agent is None:
        return _done(_("No agent profile is linked to your account."), 409)
    if status not in CHOOSABLE:
        return _done(_("This presence cannot be chosen."), 400)
    settings = web_context().settings
    with web_context().db.transaction() as session:
        row = presence.set_presence(
            session,
            agent.id,
            status,
            now=_now(),
            console=settings.console,
            zone=settings.zone,
            by_user_id=int(current_user.id),
        )
        result: dict[str, Any] = {"status": row.status, "late": row.late}
    push_presence(runtime(), agent.extension, status)
    return _done(_("Presence: %(status)s", status=status_label(status)), **result)


@bp.post("/wrapup")
@roles_required(*AGENT_ROLES)
def submit_wrapup() -> ResponseReturnValue:
    agent = _agent()
    settings = web_context().settings
    try:
        call_id = int(request.form.get("call_id", ""))
    except ValueError:
        return _done(_("Choose a call first."), 400)
    try:
        with web_context().db.transaction() as session:
            call = wrapup.wrap_up(
                session,
                call_id,
                category=request.form.get("category", ""),
                note=request.form.get("note", ""),
                user_id=int(current_user.id),
                agent_id=agent.id if agent else None,
                may_wrap_any=_is_lead(),
                now=_now(),
                console=settings.console,
                zone=settings.zone,
            )
            freed = _freed_extension(session, call.agent_id)
    except NotFound:
        return _done(_("No such call."), 404)
    except ConsoleError as exc:
        return _done(wrapup_message(str(exc)), 400)
    if freed is not None:
        push_presence(runtime(), freed, "available")
    status = _status_of(agent)
    if status == "available":
        return _done(_("Wrap-up saved; you are available again."), status=status)
    return _done(_("Wrap-up saved."), status=status)


def _status_of(agent: AgentView | None) -> str | None:
    if agent is None:
        return None
    with reading() as session:
        row = presence.current(session, agent.id)
        return row.status if row is not None else "offline"


def _freed_extension(session: Session, agent_id: int | None) -> str | None:
    """The extension of the call's agent if the wrap-up made them available again."""
    if agent_id is None:
        return None
    state, owner = session.get(AgentPresence, agent_id), session.get(Agent, agent_id)
    if state is None or owner is None or state.status != "available":
        return None
    return owner.extension


@bp.post("/transfer")
@roles_required(*TRANSFER_ROLES)
def transfer() -> ResponseReturnValue:
    context, settings, agent = web_context(), web_context().settings, _agent()
    try:
        call_id = int(request.form.get("call_id", ""))
        department = settings.department(request.form.get("department", ""))
    except (ValueError, KeyError):
        return _done(_("Choose a call and a department."), 400)
    token = request.form.get("token") or uuid.uuid4().hex
    try:
        with context.db.read() as session:
            plan = transfers.plan_transfer(
                session,
                call_id,
                department,
                token=token,
                agent_id=agent.id if agent else None,
                may_transfer_any=_is_lead(),
            )
            if transfers.already_done(session, plan):
                return _done(_("Transferred to %(department)s.", department=department.name_zh))
    except NotFound:
        return _done(_("No such call."), 404)
    except ConsoleError as exc:
        log.info("transfer of call %s refused: %s", call_id, exc)
        return _done(_("This call cannot be transferred now."), 409)
    problem = _send_transfer(plan)
    if problem is not None:
        log.warning("transfer of call %s to %s failed: %s", call_id, department.code, problem)
        return _done(_("The transfer failed: %(reason)s", reason=problem), 502)
    with context.db.transaction() as session:
        transfers.record_transfer(
            session,
            plan,
            by_user_id=int(current_user.id),
            now=_now(),
            region=settings.organisation.phone_region,
        )
    return _done(_("Transferred to %(department)s.", department=department.name_zh))


def _send_transfer(plan: transfers.TransferPlan) -> str | None:
    """Send the transfer through the call's channel; the reason when it failed, else None."""
    settings = web_context().settings
    department = plan.department
    if plan.channel == "twilio":
        try:
            transfer_call(
                make_client(settings),
                plan.caller_channel,
                department.twilio_number,
                caller_id=settings.twilio.caller_id,
            )
        except OutboundError as exc:
            return exc.message
        return None
    try:
        with short_connection(settings.ami, runtime().clock) as client:
            result = ami_redirect(
                client, plan.caller_channel, department.asterisk_context, department.asterisk_exten
            )
    except AmiError as exc:
        return str(exc)
    return None if result.ok else result.message


# --- lists and the shift ---------------------------------------------------------------------------


@bp.get("/unlogged")
@roles_required(*AGENT_ROLES)
def unlogged() -> ResponseReturnValue:
    """Calls without wrap-up after the window: the agent's own; a team leader or supervisor sees all."""
    settings, agent, lead = web_context().settings, _agent(), _is_lead()
    if not lead and agent is None:
        abort(404)
    query = waiting_query(
        now=_now(),
        window_min=settings.console.wrapup_window_min,
        agent_id=None if lead else agent.id if agent else None,
    )
    reveal = current_user.has_role(*FULL_NUMBER_ROLES)
    with reading() as session:
        page = paginate(session, query, size=UNLOGGED_PAGE)
        rows = waiting_calls(session, list(page.items))
    return render_template(
        "console/unlogged.html",
        rows=mapped(
            page,
            [
                unlogged_row(row, reveal=reveal or (agent is not None and row.agent_id == agent.id))
                for row in rows
            ],
        ),
        everyone=lead,
        window=settings.console.wrapup_window_min,
    )


@bp.get("/shift")
@roles_required(*LEAD_ROLES)
def shift() -> ResponseReturnValue:
    settings, now = web_context().settings, _now()
    window = presence.shift_at(now, settings.console, settings.zone) or presence.previous_window(
        now, settings.console, settings.zone
    )
    if window is None:  # no shift of the settings is in progress or has ended: say so
        return render_template("console/shift.html", window=None)
    with reading() as session:
        items = shifts.shift_items(session, window)
        late = presence.late_logins(session, window)
        late_rows = [(row.agent_id, row.at.astimezone(settings.zone).strftime("%H:%M")) for row in late]
        handover = shifts.latest_handover(session, before=now)
        latest = handover_view(handover) if handover is not None else None
        everyone = people(session)
    return render_template(
        "console/shift.html",
        window=window_view(window),
        cases=[item_view(item) for item in items.cases],
        callbacks=[item_view(item) for item in items.callbacks],
        late=late_rows,
        handover=latest,
        people=[p for p in everyone if p[0] != int(current_user.id)],
    )


@bp.post("/handover")
@roles_required(*LEAD_ROLES)
def handover() -> ResponseReturnValue:
    settings, now = web_context().settings, _now()
    window = presence.shift_at(now, settings.console, settings.zone) or presence.previous_window(
        now, settings.console, settings.zone
    )
    if window is None:
        flash(_("No shift is configured for the present time: there is nothing to hand over."), "error")
        return redirect(url_for("console.shift"))
    receiving = request.form.get("receiving_id", "")
    try:
        with web_context().db.transaction() as session:
            record = shifts.submit_handover(
                session,
                window,
                team=request.form.get("team", "")[:64],
                on_duty_id=int(current_user.id),
                receiving_id=int(receiving) if receiving.isdigit() else None,
                note=request.form.get("note", ""),
                now=now,
            )
            count = record.pending_count
    except ConsoleError as exc:
        flash(handover_message(str(exc)), "error")
        return redirect(url_for("console.shift"))
    flash(_("Handover recorded with %(count)d pending items.", count=count), "info")
    return redirect(url_for("console.shift"))


@bp.post("/handover/<int:handover_id>/ack")
@roles_required(*AGENT_ROLES)
def acknowledge(handover_id: int) -> ResponseReturnValue:
    try:
        with web_context().db.transaction() as session:
            shifts.acknowledge(session, handover_id, user_id=int(current_user.id), now=_now())
    except ConsoleError:
        flash(_("Only the receiving person acknowledges the handover."), "error")
        return redirect(url_for("console.index"))
    flash(_("Handover acknowledged."), "info")
    return redirect(url_for("console.index"))
