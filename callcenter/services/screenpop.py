"""The screen-pop: who a live event is for, and the caller card an agent sees when a call rings.

``routing_keys`` turns a SCREEN_POP event into the keys of the agents it may be for (the AMI member
interface, the Twilio identity, the agent id); ``agent_keys`` gives an agent's own keys. A web process
matches the two with set lookups, so one event costs the same with 5 or 500 agents connected.
``card`` reads the call, the caller, the last calls and the open cases: plain JSON for the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.models import Call, Caller, Case
from callcenter.phone import normalise, region_of
from callcenter.services.calls import id_for_key
from callcenter.settings import Settings

LAST_CALLS = 5
OPEN_CASES = 10
SCRIPT_ZH = "您好,这里是{company}{department},我是{agent}。请问有什么可以帮您?"
SCRIPT_EN = "Hello, this is {company} {department}, {agent} speaking. How may I help you?"


@dataclass(frozen=True)
class AgentView:
    """The signed-in agent as the console needs it (plain data, no session)."""

    id: int
    name: str
    extension: str | None
    twilio_identity: str | None


def agent_keys(agent: AgentView) -> frozenset[str]:
    keys = {f"agent:{agent.id}"}
    if agent.extension:  # "1001" or a full interface "PJSIP/1001": both forms name the agent
        keys |= {f"ext:{agent.extension}", f"ext:{agent.extension.split('/', 1)[-1]}"}
    if agent.twilio_identity:
        keys.add(f"twilio:{agent.twilio_identity}")
    return frozenset(keys)


def interface_keys(interface: str) -> set[str]:
    """Keys for a queue member interface: ``PJSIP/1001``, ``Local/1001@agents/n``, ``client:alice``."""
    if not interface:
        return set()
    if interface.startswith("client:") or interface.startswith("+"):
        return {f"twilio:{interface.removeprefix('client:')}"}
    bare = interface.removesuffix("/n")
    resource = bare.split("/", 1)[-1]
    return {f"ext:{name}" for name in (interface, bare, resource, resource.split("@", 1)[0])}


def routing_keys(payload: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for name in ("agent", "agent_id"):
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            keys.add(f"agent:{value}")
        elif isinstance(value, str) and value:
            keys |= interface_keys(value)
    for name in ("interface", "agent_interface"):
        value = payload.get(name)
        if isinstance(value, str):
            keys |= interface_keys(value)
    return keys


def opening_script(settings: Settings, agent_name: str) -> dict[str, str]:
    """The seeds' opening line (B18), with the organisation from settings and the agent's name."""
    organisation = settings.organisation
    values = {
        "company": organisation.company_name,
        "department": organisation.department,
        "agent": agent_name,
    }
    return {"zh": SCRIPT_ZH.format(**values), "en": SCRIPT_EN.format(**values)}


def _find_call(session: Session, payload: dict[str, Any]) -> Call | None:
    call_id = payload.get("call_id")
    if not isinstance(call_id, int):
        linkedid = payload.get("call_sid") or payload.get("linkedid")
        channel = "twilio" if payload.get("call_sid") else "asterisk"
        call_id = id_for_key(session, channel, str(linkedid)) if linkedid else None
    return session.get(Call, call_id) if call_id is not None else None


def _call_row(call: Call, zone: Any) -> dict[str, Any]:
    return {
        "id": call.id,
        "started_at": call.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "queue": call.queue_name or "",
        "disposition": call.disposition,
        "ivr_branch": call.ivr_branch or "",
        "wrapup_category": call.wrapup_category or "",
        "wrapup_note": (call.wrapup_note or "")[:200],
    }


def _caller_part(
    session: Session, settings: Settings, call: Call | None, payload: dict[str, Any], now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    number = call.from_e164 if call is not None else None
    if number is None:
        number = normalise(str(payload.get("caller") or ""), settings.organisation.phone_region).e164
    caller = call.caller if call is not None and call.caller is not None else None
    if caller is None and number:
        caller = session.execute(select(Caller).where(Caller.e164 == number)).scalar_one_or_none()
    network_name = call.caller_name if call is not None else str(payload.get("caller_name") or "")
    rules = settings.callers
    prior = select(Call).where(Call.from_e164 == number) if number else None
    if prior is not None and call is not None:
        prior = prior.where(Call.id != call.id)
    recent_count, last_calls = 0, []
    if prior is not None:
        since = now - timedelta(days=rules.frequent_window_days)
        counted = select(func.count()).select_from(prior.where(Call.started_at >= since).subquery())
        recent_count = int(session.execute(counted).scalar() or 0)
        if call is not None and call.started_at >= since:
            recent_count += 1  # this call counts too
        rows = session.execute(prior.order_by(Call.started_at.desc(), Call.id.desc()).limit(LAST_CALLS))
        last_calls = [_call_row(row, settings.zone) for row in rows.scalars()]
    cases: list[dict[str, Any]] = []
    if caller is not None:
        query = (
            select(Case)
            .where(Case.caller_id == caller.id, Case.status != "closed")
            .order_by(Case.registered_at.desc())
            .limit(OPEN_CASES)
        )
        cases = [
            {
                "number": case.number,
                "type": case.case_type,
                "status": case.status,
                "category": case.category,
                "title": case.title,
                "delayed": case.delayed,
            }
            for case in session.execute(query).scalars()
        ]
    tier = caller.tier if caller is not None else "normal"
    card = {
        "name": (caller.name if caller is not None and caller.name else "") or network_name,
        "network_name": network_name,
        "number": number or str(payload.get("caller") or ""),
        "known": caller is not None,
        "tier": tier,
        "vip": tier == "vip",
        "region": (caller.region if caller is not None and caller.region else "")
        or region_of(number or "", "zh"),
        "calls_in_window": recent_count,
        "window_days": rules.frequent_window_days,
        "frequent": recent_count >= rules.frequent_calls,
    }
    return card, last_calls, cases


def card(
    session: Session, settings: Settings, agent: AgentView, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The caller card for one screen-pop event (the call may not be on record yet: the event's own
    fields fill in)."""
    call = _find_call(session, payload)
    caller, last_calls, cases = _caller_part(session, settings, call, payload, now)
    wait = payload.get("wait_s")
    if wait is None and call is not None:
        wait = call.wait_s if call.wait_s is not None else int((now - call.started_at).total_seconds())
    return {
        "event_id": payload.get("event_id"),
        "state": payload.get("state") or "ringing",
        "call": {
            "id": call.id if call is not None else None,
            "channel": call.channel
            if call is not None
            else ("twilio" if payload.get("call_sid") else "asterisk"),
            "queue": (call.queue_name if call is not None else None) or payload.get("queue") or "",
            "wait_s": wait,
            "ivr_path": list(call.ivr_path) if call is not None else [],
            "ivr_branch": call.ivr_branch if call is not None else None,
            "transfers": list(call.transfers) if call is not None else [],
            "wrapped_up": bool(call is not None and call.wrapped_up_at is not None),
        },
        "caller": caller,
        "history_first": caller["frequent"],
        "last_calls": last_calls,
        "open_cases": cases,
        "script": opening_script(settings, agent.name),
        "case_url": f"/cases/new?call_id={call.id}" if call is not None else None,
    }
