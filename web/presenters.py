"""Calls as the pages show them: plain, already formatted view models built inside the session.

Templates only print these fields; every decision (time zone, masking, labels) is made here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from callcenter.models import Call, Caller, CallEvent, Recording
from callcenter.phone import mask
from web import labels

# Roles with a need to know a caller's full number on a call's page (and to search by part of one);
# everyone else sees it masked. Admins manage accounts, not calls: their role alone shows no call.
FULL_NUMBER_ROLES = ("supervisor", "team_leader", "manager", "complaint_head")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PATH_SEPARATOR = " → "


@dataclass(frozen=True)
class Display:
    """How to show things to this viewer: their zone, the numbering region, their language."""

    zone: ZoneInfo
    region: str
    locale: str
    reveal_numbers: bool = False


@dataclass(frozen=True)
class CallRow:
    id: int
    started: str
    caller_name: str
    number: str
    branch: str
    queue: str
    disposition: str
    ivr_path: str
    direction: str = ""
    agent: str = ""


@dataclass(frozen=True)
class CallerCard:
    name: str
    tier: str
    is_vip: bool
    region: str


@dataclass(frozen=True)
class TimelineRow:
    at: str
    source: str
    kind: str  # the display name
    code: str  # the raw kind, for support (a title attribute)
    node: str
    data: str  # the known fields in words
    raw: str  # every field as stored, for support (a title attribute)


@dataclass(frozen=True)
class RecordingRow:
    started: str
    source: str
    status: str
    duration: str
    size: str


@dataclass(frozen=True)
class CallDetail:
    id: int
    channel: str
    external_id: str
    direction: str
    started: str
    answered: str
    ended: str
    wait: str
    talk: str
    caller_name: str
    from_number: str
    to_number: str
    branch: str
    queue: str
    priority: int
    disposition: str
    end_reason: str
    ivr_path: str
    agent: str
    hangup_side: str
    transfers: list[str]
    missed_rings: list[str]
    caller: CallerCard | None
    timeline: list[TimelineRow]
    recordings: list[RecordingRow]


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime(TIME_FORMAT) if moment is not None else ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def file_size(size: int | None) -> str:
    if size is None:
        return ""
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} kB"


def phone_number(raw: str, e164: str | None, display: Display) -> str:
    shown = e164 or raw
    return shown if display.reveal_numbers else mask(shown, display.region)


def caller_name(call: Call) -> str:
    # The name the network sent; the archive's name when the network sent none.
    return call.caller_name or (call.caller.name if call.caller is not None else "")


def queue_title(call: Call, display: Display) -> str:
    queue = call.queue
    if queue is None:
        return call.queue_name or ""
    title = queue.title_zh if display.locale == "zh" else queue.title_en
    return title or queue.name


def ivr_path(call: Call) -> str:
    return PATH_SEPARATOR.join(labels.ivr_nodes(call.ivr_path or []))


def transfer_line(transfer: dict[str, Any], zone: ZoneInfo) -> str:
    """One transfer: when, where to, and how long the caller talked there."""
    at = datetime.fromisoformat(str(transfer["at"])) if transfer.get("at") else None
    target = str(transfer.get("department_name") or transfer.get("department") or transfer.get("exten") or "")
    talk = transfer.get("talk_s")
    parts = [
        local_time(at, zone),
        target,
        _("talk %(time)s", time=duration(talk)) if talk is not None else "",
    ]
    return " · ".join(part for part in parts if part)


def missed_ring_line(event: CallEvent, zone: ZoneInfo) -> str:
    """An agent the queue rang in vain: who, when, for how long."""
    data = event.data
    who = str(data.get("member") or data.get("interface") or "")
    ring = data.get("ring_s")
    rang = _("rang %(seconds)s s", seconds=round(ring)) if isinstance(ring, int | float) else ""
    return " · ".join(part for part in (local_time(event.at, zone), who, rang) if part)


def call_row(call: Call, display: Display) -> CallRow:
    return CallRow(
        id=call.id,
        started=local_time(call.started_at, display.zone),
        caller_name=caller_name(call),
        number=phone_number(call.from_raw, call.from_e164, display),
        branch=labels.label(labels.BRANCHES, call.ivr_branch),
        queue=queue_title(call, display),
        disposition=labels.label(labels.DISPOSITIONS, call.disposition),
        ivr_path=ivr_path(call),
        direction=labels.label(labels.DIRECTIONS, call.direction),
        agent=call.agent.name if call.agent is not None else "",
    )


def _data_text(data: Mapping[str, Any]) -> str:
    def value_text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return ", ".join(f"{key}={value_text(value)}" for key, value in sorted(data.items()))


def _event_value(key: str, value: Any, queues: Mapping[str, str]) -> str:
    if key == "queue":
        return queues.get(str(value), str(value))
    if key == "branch":
        return labels.label(labels.BRANCHES, str(value))
    if key == "outcome":
        return labels.label(labels.IVR_INPUTS, str(value))
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    return str(value)


def event_details(data: Mapping[str, Any], queues: Mapping[str, str] | None = None) -> str:
    """An event's fields that mean something to staff, by their display names; codes translated
    (``queues``: queue name → title)."""
    queues = queues or {}
    parts = [
        f"{labels.EVENT_DATA[key]} {_event_value(key, data[key], queues)}"
        for key in labels.EVENT_DATA
        if data.get(key) not in (None, "")
    ]
    outcome = data.get("outcome")
    if isinstance(outcome, str) and outcome:
        parts.append(_event_value("outcome", outcome, queues))
    return " · ".join(parts)


def timeline_row(event: CallEvent, zone: ZoneInfo, queues: Mapping[str, str] | None = None) -> TimelineRow:
    data = event.data or {}
    return TimelineRow(
        at=local_time(event.at, zone),
        source=labels.label(labels.EVENT_SOURCES, event.source),
        kind=labels.label(labels.EVENT_KINDS, event.kind),
        code=event.kind,
        node=labels.label(labels.IVR_NODES, event.node) if event.node else "",
        data=event_details(data, queues),
        raw=_data_text(data),
    )


def recording_row(recording: Recording, zone: ZoneInfo) -> RecordingRow:
    return RecordingRow(
        started=local_time(recording.started_at, zone),
        source=recording.source,
        status=labels.label(labels.RECORDING_STATUSES, recording.status),
        duration=duration(recording.duration_s),
        size=file_size(recording.size_bytes),
    )


def caller_card(caller: Caller | None) -> CallerCard | None:
    if caller is None:
        return None
    return CallerCard(
        name=caller.name,
        tier=labels.label(labels.TIERS, caller.tier),
        is_vip=caller.is_vip,
        region=caller.region,
    )


def call_detail(call: Call, display: Display) -> CallDetail:
    queues = {call.queue.name: queue_title(call, display)} if call.queue is not None else {}
    return CallDetail(
        id=call.id,
        channel=call.channel,
        external_id=call.external_id,
        direction=labels.label(labels.DIRECTIONS, call.direction),
        started=local_time(call.started_at, display.zone),
        answered=local_time(call.answered_at, display.zone),
        ended=local_time(call.ended_at, display.zone),
        wait=duration(call.wait_s),
        talk=duration(call.talk_s),
        caller_name=caller_name(call),
        from_number=phone_number(call.from_raw, call.from_e164, display),
        to_number=phone_number(call.to_raw, call.to_e164, display),
        branch=labels.label(labels.BRANCHES, call.ivr_branch),
        queue=queue_title(call, display),
        priority=call.priority,
        disposition=labels.label(labels.DISPOSITIONS, call.disposition),
        end_reason=call.end_reason or "",
        ivr_path=ivr_path(call),
        agent=call.agent.name if call.agent is not None else (call.agent_interface or ""),
        hangup_side=labels.label(labels.HANGUP_SIDES, call.hangup_side),
        transfers=[transfer_line(item, display.zone) for item in call.transfers or []],
        missed_rings=[
            missed_ring_line(event, display.zone) for event in call.events if event.kind == "agent.missed"
        ],
        caller=caller_card(call.caller),
        timeline=[timeline_row(event, display.zone, queues) for event in call.events],
        recordings=[recording_row(recording, display.zone) for recording in call.recordings],
    )
