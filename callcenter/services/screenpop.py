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

from sqlalchemy import Row, bindparam, func, select
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


# Built once: a card is read on every ring, so each read only binds its values (column rows, no
# ORM objects: the card is plain data).
_CALL = select(
    Call.id,
    Call.channel,
    Call.from_e164,
    Call.caller_name,
    Call.caller_id,
    Call.queue_name,
    Call.wait_s,
    Call.started_at,
    Call.ivr_path,
    Call.ivr_branch,
    Call.transfers,
    Call.wrapped_up_at,
).where(Call.id == bindparam("id"))
_CALLER_BY_ID = select(Caller.id, Caller.name, Caller.tier, Caller.region).where(Caller.id == bindparam("id"))
_CALLER_BY_NUMBER = select(Caller.id, Caller.name, Caller.tier, Caller.region).where(
    Caller.e164 == bindparam("number")
)
_PRIOR_COUNT = select(func.count(Call.id)).where(
    Call.from_e164 == bindparam("number"),
    Call.id != bindparam("exclude"),
    Call.started_at >= bindparam("since"),
)
_PRIOR_CALLS = (
    select(
        Call.id,
        Call.started_at,
        Call.queue_name,
        Call.disposition,
        Call.ivr_branch,
        Call.wrapup_category,
        Call.wrapup_note,
    )
    .where(Call.from_e164 == bindparam("number"), Call.id != bindparam("exclude"))
    .order_by(Call.started_at.desc(), Call.id.desc())
    .limit(LAST_CALLS)
)
_OPEN_CASES = (
    select(Case.number, Case.case_type, Case.status, Case.category, Case.title, Case.delayed)
    .where(Case.caller_id == bindparam("caller_id"), Case.status != "closed")
    .order_by(Case.registered_at.desc())
    .limit(OPEN_CASES)
)


def _find_call(session: Session, payload: dict[str, Any]) -> Row[Any] | None:
    call_id = payload.get("call_id")
    if not isinstance(call_id, int):
        linkedid = payload.get("call_sid") or payload.get("linkedid")
        channel = "twilio" if payload.get("call_sid") else "asterisk"
        call_id = id_for_key(session, channel, str(linkedid)) if linkedid else None
    return session.execute(_CALL, {"id": call_id}).first() if call_id is not None else None


def _call_row(row: Row[Any], zone: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "started_at": row.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        "queue": row.queue_name or "",
        "disposition": row.disposition,
        "ivr_branch": row.ivr_branch or "",
        "wrapup_category": row.wrapup_category or "",
        "wrapup_note": (row.wrapup_note or "")[:200],
    }


def _caller_part(
    session: Session, settings: Settings, call: Row[Any] | None, payload: dict[str, Any], now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    number = call.from_e164 if call is not None else None
    if number is None:
        number = normalise(str(payload.get("caller") or ""), settings.organisation.phone_region).e164
    caller = None
    if call is not None and call.caller_id is not None:
        caller = session.execute(_CALLER_BY_ID, {"id": call.caller_id}).first()
    if caller is None and number:
        caller = session.execute(_CALLER_BY_NUMBER, {"number": number}).first()
    network_name = call.caller_name if call is not None else str(payload.get("caller_name") or "")
    rules = settings.callers
    recent_count, last_calls = 0, []
    if number:
        exclude = call.id if call is not None else -1
        since = now - timedelta(days=rules.frequent_window_days)
        counted = session.execute(_PRIOR_COUNT, {"number": number, "exclude": exclude, "since": since})
        recent_count = int(counted.scalar() or 0)
        if call is not None and call.started_at >= since:
            recent_count += 1  # this call counts too
        rows = session.execute(_PRIOR_CALLS, {"number": number, "exclude": exclude})
        last_calls = [_call_row(row, settings.zone) for row in rows]
    cases: list[dict[str, Any]] = []
    if caller is not None:
        cases = [
            {
                "number": row.number,
                "type": row.case_type,
                "status": row.status,
                "category": row.category,
                "title": row.title,
                "delayed": row.delayed,
            }
            for row in session.execute(_OPEN_CASES, {"caller_id": caller.id})
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
