"""Display names for the codes stored on calls (branch, disposition, tier, …), in the page's language.

Codes not listed here are shown as stored, so a new code is visible before it is translated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

BRANCHES: Mapping[str, LazyString] = {
    "consultation": _l("Consultation"),
    "complaint": _l("Complaint"),
    "timeout": _l("No choice (timeout)"),
    "invalid": _l("Invalid choice"),
    "operator": _l("Operator"),
    "callback": _l("Callback"),
    "error": _l("System error (default queue)"),
}
DISPOSITIONS: Mapping[str, LazyString] = {
    "in_ivr": _l("In IVR"),
    "queued": _l("Queued"),
    "abandoned_in_ivr": _l("Hung up in IVR"),
    "ended_in_ivr": _l("Ended in IVR"),
    "answered": _l("Answered"),
    "abandoned_in_queue": _l("Abandoned in queue"),
    "queue_timeout": _l("Queue timeout (no agent answered)"),
    "queue_refused": _l("Queue unavailable (no agent free)"),
    "queue_callback": _l("Left the queue for a callback"),
    "not_answered": _l("Not answered"),
    "completed": _l("Completed"),
}
HANGUP_SIDES: Mapping[str, LazyString] = {
    "caller": _l("Caller"),
    "agent": _l("Agent"),
    "ivr": _l("IVR (the system ended the call)"),
    "transfer": _l("Transferred away"),
}
DIRECTIONS: Mapping[str, LazyString] = {"inbound": _l("Inbound"), "outbound": _l("Outbound")}
TIERS: Mapping[str, LazyString] = {
    "vip": _l("VIP"),
    "key": _l("Key account"),
    "normal": _l("Regular"),
    "potential": _l("Prospect"),
}
RECORDING_STATUSES: Mapping[str, LazyString] = {
    "pending": _l("Pending"),
    "verified": _l("Verified"),
    "empty": _l("Empty (never bridged)"),
    "missing": _l("Missing"),
    "invalid": _l("Unusable file"),
}

# What a call's timeline shows for an event's kind and source (the raw kind stays in a title attribute).
EVENT_KINDS: Mapping[str, LazyString] = {
    "ivr.node": _l("Reached an IVR step"),
    "ivr.hours": _l("Business hours checked"),
    "ivr.input": _l("Caller pressed a key"),
    "ivr.route": _l("Routed to a queue"),
    "ivr.fallback": _l("IVR error: routed to the default queue"),
    "ivr.end": _l("IVR ended the call"),
    "ivr.hangup": _l("Caller hung up in the IVR"),
    "ivr.language": _l("Language chosen"),
    "ivr.record": _l("Voicemail not recorded"),
    "ivr.error": _l("IVR error"),
    "callback.requested": _l("Callback requested"),
    "queue.join": _l("Joined the queue"),
    "queue.abandon": _l("Hung up while queuing"),
    "queue.exit": _l("Left the queue"),
    "agent.ringing": _l("Ringing an agent"),
    "agent.missed": _l("Agent did not answer"),
    "agent.connect": _l("Agent answered"),
    "agent.complete": _l("Agent's talk ended"),
    "call.transfer": _l("Transferred"),
    "call.hangup": _l("Hung up"),
    "call.status": _l("Call status"),
    "call.task": _l("Callback call"),
    "recording.started": _l("Recording started"),
    "recording.failed": _l("Recording failed"),
    "cdr": _l("Billing record"),
    "record.cleaned": _l("Control characters removed"),
}
EVENT_SOURCES: Mapping[str, LazyString] = {
    "agi": _l("IVR (Asterisk)"),
    "ami": _l("Switch (Asterisk)"),
    "twilio": _l("Twilio"),
    "web": _l("Web"),
    "system": _l("System"),
    "ivr_survey": _l("Survey"),
}
# The keys of an event's data shown on the timeline, in this order; the others stay in the title.
EVENT_DATA: Mapping[str, LazyString] = {
    "digits": _l("keys"),
    "queue": _l("queue"),
    "branch": _l("branch"),
    "position": _l("position"),
    "member": _l("agent"),
    "ring_s": _l("rang (s)"),
    "HoldTime": _l("waited (s)"),
    "TalkTime": _l("talked (s)"),
    "target": _l("to"),
    "cause_txt": _l("cause"),
    "reason": _l("reason"),
    "status": _l("status"),
    "language": _l("language"),
    "open": _l("open"),
}
IVR_INPUTS: Mapping[str, LazyString] = {
    "option": _l("Menu choice"),
    "repeat": _l("Repeat"),
    "invalid": _l("Invalid key"),
    "no_input": _l("No key pressed"),
}
NOTICE_KINDS: Mapping[str, LazyString] = {
    "promise_due_soon": _l("A reply promised to the customer is due soon"),
    "major_case": _l("A major case needs your attention"),
    "qa_rescore": _l("An agent disputed a score: re-score the call"),
    "qa_dispute_lead": _l("A disputed score no other evaluator may re-score: re-score it as the QA lead"),
}
ROLES: Mapping[str, LazyString] = {
    "admin": _l("Administrator"),
    "agent_consultation": _l("Consultation agent"),
    "agent_complaint": _l("Complaint agent"),
    "callback_specialist": _l("Callback specialist"),
    "team_leader": _l("Team leader"),
    "qa": _l("Quality assurance"),
    "supervisor": _l("Supervisor"),
    "complaint_head": _l("Complaint department head"),
    "manager": _l("Customer-service manager"),
    "department_handler": _l("Department handler"),
}
SKILL_LEVELS: Mapping[str, LazyString] = {
    "junior": _l("Junior"),
    "mid": _l("Intermediate"),
    "senior": _l("Senior"),
}
AUDIT_ACTIONS: Mapping[str, LazyString] = {
    "admin.user.create": _l("Account created"),
    "admin.user.update": _l("Account changed"),
    "admin.user.password": _l("Password reset"),
    "admin.agent.create": _l("Agent created"),
    "admin.agent.update": _l("Agent changed"),
    "admin.queue.create": _l("Queue created"),
    "admin.queue.update": _l("Queue changed"),
    "auth.lockout": _l("Sign-in locked"),
    "recording.play": _l("Recording played"),
    "recording.download": _l("Recording downloaded"),
    "case.attachment.download": _l("Attachment downloaded"),
    "case.extend": _l("Deadline extended"),
}
AUDIT_OBJECTS: Mapping[str, LazyString] = {
    "user": _l("Account"),
    "agent": _l("Agent"),
    "queue": _l("Queue"),
    "address": _l("Address"),
    "recording": _l("Recording"),
}
# The fields an audit row's details name (account, agent and queue fields, a lockout's figures).
AUDIT_FIELDS: Mapping[str, LazyString] = {
    "username": _l("Username"),
    "display_name": _l("Display name"),
    "roles": _l("Roles"),
    "department": _l("Department"),
    "is_department_head": _l("Department head"),
    "locale": _l("Language"),
    "active": _l("Active"),
    "name": _l("Name"),
    "extension": _l("Extension"),
    "twilio_identity": _l("Twilio identity"),
    "skill_level": _l("Skill level"),
    "team": _l("Team"),
    "queues": _l("Queues"),
    "user_id": _l("Linked account"),
    "title_zh": _l("Chinese title"),
    "title_en": _l("English title"),
    "agents": _l("Agents"),
    "locked_until": _l("Locked until"),
    "minutes": _l("Minutes"),
}


def label(table: Mapping[str, LazyString], code: str | None) -> str:
    if not code:
        return ""
    text = table.get(code)
    return str(text) if text is not None else code


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(_l("yes") if value else _l("no"))
    if value is None or value in ("", []):
        return "—"
    if isinstance(value, list | tuple):
        return "、".join(label(ROLES, str(item)) for item in value)
    return label(ROLES, str(value)) if isinstance(value, str) else str(value)


def audit_details(data: Mapping[str, Any] | None) -> str:
    """An audit row's data in words: ``field: old → new`` for changes, ``field: value`` for the rest;
    field names and role codes by their display names."""
    parts: list[str] = []
    for key, value in sorted((data or {}).items()):
        if key == "changes" and isinstance(value, Mapping):
            for field, change in sorted(value.items()):
                old, new = change if isinstance(change, list | tuple) and len(change) == 2 else (None, change)
                parts.append(f"{label(AUDIT_FIELDS, field)}: {_value_text(old)} → {_value_text(new)}")
        else:
            parts.append(f"{label(AUDIT_FIELDS, key)}: {_value_text(value)}")
    return "; ".join(parts)


# Callbacks and campaigns (the worklist, the callback screen, the campaign pages).
CALLBACK_KINDS: Mapping[str, LazyString] = {
    "pre_sale": _l("Pre-sale follow-up"),
    "after_sale": _l("After-sale follow-up"),
    "complaint": _l("Complaint callback"),
    "new_order": _l("New order"),
    "repair_order": _l("Repair order"),
    "key_account": _l("Key account care"),
    "relationship": _l("Relationship care"),
    "win_back": _l("Win-back"),
    "special_occasion": _l("Special occasion"),
    "renewal_reminder": _l("Renewal reminder"),
    "missed_call": _l("Missed call"),
    "after_hours": _l("After-hours call"),
    "promised_reply": _l("Promised reply"),
    "queue_callback": _l("Queue callback"),
    "survey": _l("Survey"),
}
CALLBACK_STATUSES: Mapping[str, LazyString] = {
    "pending": _l("To do"),
    "claimed": _l("Claimed by the dialler"),
    "dialling": _l("Dialling"),
    "done": _l("Done"),
    "failed": _l("Failed"),
    "unreachable": _l("Unreachable by phone"),
    "cancelled": _l("Cancelled"),
}
# A dial attempt's result (``error``: our side, e.g. Asterisk refused the action) or its open state.
ATTEMPT_RESULTS: Mapping[str, LazyString] = {
    "reached": _l("Reached"),
    "no_answer": _l("No answer"),
    "busy": _l("Busy"),
    "wrong_number": _l("Wrong number"),
    "refused": _l("Refused"),
    "error": _l("Dialling error"),
    "not_placed": _l("Not placed"),
    "intent": _l("About to dial"),
    "sent": _l("Dialled, waiting for the outcome"),
}
# What a callback's script found (callback_results: the customer answered, or someone else did).
SCRIPT_OUTCOMES: Mapping[str, LazyString] = {
    "reached": _l("Reached"),
    "not_the_customer": _l("Not the customer"),
}
CAMPAIGN_MODES: Mapping[str, LazyString] = {
    "preview": _l("Preview (the agent clicks to dial)"),
    "progressive": _l("Progressive (the dialler calls)"),
    "survey": _l("Keypad survey"),
}
CAMPAIGN_STATUSES: Mapping[str, LazyString] = {
    "draft": _l("Draft"),
    "active": _l("Active"),
    "paused": _l("Paused"),
    "finished": _l("Finished"),
}
OUTBOUND_CHANNELS: Mapping[str, LazyString] = {"asterisk": _l("Asterisk"), "twilio": _l("Twilio")}
# The default wrap-up categories ([console] wrapup_categories); a category added in the settings is
# shown as configured.
WRAPUP_CATEGORIES: Mapping[str, LazyString] = {
    "consultation": _l("Consultation"),
    "complaint": _l("Complaint"),
    "suggestion": _l("Suggestion"),
    "fault_report": _l("Fault report"),
    "transferred": _l("Transferred"),
    "wrong_number": _l("Wrong number"),
    "other": _l("Other"),
}


# The nodes of the shipped flows (ivr_flows/), as the IVR path shows them; a node of another flow is
# shown by its name.
IVR_NODES: Mapping[str, LazyString] = {
    "welcome": _l("Welcome"),
    "hours": _l("Opening hours check"),
    "main_menu": _l("Main menu"),
    "english": _l("English"),
    "route_consultation": _l("To consultation"),
    "route_complaint": _l("To complaints & suggestions"),
    "route_operator": _l("To an operator"),
    "route_timeout": _l("No key: to an agent"),
    "route_invalid": _l("Wrong key: to an agent"),
    "closed": _l("Closed: callback booked"),
    "missed": _l("All agents busy: callback booked"),
    "voicemail_menu": _l("Voicemail offer"),
    "voicemail": _l("Voicemail"),
    "voicemail_thanks": _l("Voicemail received"),
    "goodbye": _l("Goodbye"),
    "queue_callback": _l("Callback from the queue"),
    "callback_booked": _l("Callback booked"),
    "callback_greeting": _l("Callback greeting"),
    "callback_menu": _l("Callback menu"),
    "connect": _l("Connecting to an agent"),
    "survey_intro": _l("Survey"),
    "survey_menu": _l("Survey question"),
    "survey_thanks": _l("Survey thanks"),
    "survey_unanswered": _l("Survey not answered"),
}


def ivr_nodes(path: list[str] | tuple[str, ...]) -> list[str]:
    """An IVR path by the nodes' display names."""
    return [label(IVR_NODES, node) for node in path]
