"""Cases as the pages show them: plain view models built inside the session (see ``web/presenters.py``).

Numbers: lists always show them masked; a case's page shows the full number to roles with a need to
know and to the people handling that case (its agent, its department), nobody else (REQUIREMENTS G65).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callcenter.models import Case, CaseEvent, Notice, User
from callcenter.phone import mask
from callcenter.services import cases
from web import case_labels, labels
from web.labels import label
from web.presenters import FULL_NUMBER_ROLES, Display, duration, file_size, local_time, recording_row
from web.presenters import RecordingRow as CallRecordingRow

# Besides FULL_NUMBER_ROLES: the complaint head and the callback specialists call customers back.
CASE_FULL_NUMBER_ROLES = (*FULL_NUMBER_ROLES, "complaint_head", "callback_specialist")


@dataclass(frozen=True)
class CaseRow:
    id: int
    number: str
    registered: str
    case_type: str
    channel: str
    status: str
    status_code: str
    category: str
    title: str
    contact_name: str
    phone: str
    department: str
    agent: str
    resolution_due: str
    delayed: bool
    repeat: bool
    major: bool


@dataclass(frozen=True)
class EventRow:
    at: str
    kind: str
    change: str
    user: str
    reason: str
    details: str


@dataclass(frozen=True)
class CallLink:
    id: int
    started: str
    talk: str
    recordings: list[CallRecordingRow]


@dataclass(frozen=True)
class AttachmentRow:
    id: int
    filename: str
    size: str
    uploaded: str


@dataclass(frozen=True)
class CaseDetail:
    row: CaseRow
    complexity: str
    urgency: str
    content: str
    persons_involved: str
    contact_other: str
    owner: str
    escalation: str
    follow_up: str
    follow_up_date: str
    solution: str
    remedy: str
    result: str
    satisfaction: str
    redispatch_count: int
    signed_off: str
    first_reply_due: str
    first_replied: str
    first_reply_late: bool
    promised_reply: str
    promise_missed: bool
    closed: str
    events: list[EventRow]
    calls: list[CallLink]
    attachments: list[AttachmentRow]
    numbers_revealed: bool


def category_title(code: str, policy: cases.CasePolicy, locale: str) -> str:
    for category in policy.rules.categories:
        if category.code == code:
            return category.name_zh if locale == "zh" else category.name_en
    return code


def department_title(code: str | None, departments: dict[str, tuple[str, str]], locale: str) -> str:
    if not code:
        return ""
    names = departments.get(code)
    return (names[0] if locale == "zh" else names[1]) if names else code


def reveals_numbers(viewer: User, case: Case) -> bool:
    if viewer.has_role(*CASE_FULL_NUMBER_ROLES):
        return True
    handling = "first_reply" in cases.allowed_actions(viewer, case) or "promise" in cases.allowed_actions(
        viewer, case
    )
    return handling and cases.can_view(viewer, case)


def _phone(case: Case, display: Display) -> str:
    number = case.contact_e164 or ""
    return number if display.reveal_numbers else mask(number, display.region)


def case_row(
    case: Case, display: Display, policy: cases.CasePolicy, departments: dict[str, tuple[str, str]]
) -> CaseRow:
    return CaseRow(
        id=case.id,
        number=case.number,
        registered=local_time(case.registered_at, display.zone),
        case_type=label(case_labels.CASE_TYPES, case.case_type),
        channel=label(case_labels.CHANNELS, case.channel),
        status=label(case_labels.STATUSES, case.status),
        status_code=case.status,
        category=category_title(case.category, policy, display.locale),
        title=case.title,
        contact_name=case.contact_name or (case.caller.name if case.caller is not None else ""),
        phone=_phone(case, display),
        department=department_title(case.department, departments, display.locale),
        agent=case.agent.name if case.agent is not None else "",
        resolution_due=local_time(case.resolution_due_at, display.zone),
        delayed=case.delayed,
        repeat=case.is_repeat,
        major=case.urgency == "major",
    )


def _change(event: CaseEvent) -> str:
    if event.kind != "status":
        return ""
    target = label(case_labels.STATUSES, event.to_status)
    return f"{label(case_labels.STATUSES, event.from_status)} → {target}" if event.from_status else target


# The fields of a case event's data, by their display names (web/case_labels.py: EVENT_FIELDS).
_CODED = {
    "channel": case_labels.CHANNELS,
    "complexity": case_labels.COMPLEXITIES,
    "urgency": case_labels.URGENCIES,
    "remedy": case_labels.REMEDIES,
    "outcome": case_labels.CALLBACK_OUTCOMES,
    "follow_up": case_labels.FOLLOW_UPS,
    "from": case_labels.ESCALATION_LEVELS,
    "to": case_labels.ESCALATION_LEVELS,
}
_DEPARTMENTS = ("department", "from_department", "to_department")
_TIMES = ("old_due", "new_due", "at")
_HIDDEN = ("sha256",)


@dataclass(frozen=True)
class Titles:
    """What event details need to name codes: the categories and departments of the settings."""

    policy: cases.CasePolicy
    departments: dict[str, tuple[str, str]]


def _value(key: str, value: object, display: Display, titles: Titles | None) -> str:
    if isinstance(value, bool):
        return str(case_labels.YES if value else case_labels.NO)
    text = str(value)
    if key in _CODED:
        return label(_CODED[key], text)
    if key in _TIMES and isinstance(value, str) and "T" in value:
        return local_time(datetime.fromisoformat(value), display.zone)
    if titles is not None and key in _DEPARTMENTS:
        return department_title(text, titles.departments, display.locale)
    if titles is not None and key == "category":
        return category_title(text, titles.policy, display.locale)
    return text


def _details(event: CaseEvent, display: Display, titles: Titles | None = None) -> str:
    parts = []
    for key, value in sorted((event.data or {}).items()):
        if key in _HIDDEN or value is None or value == "":
            continue
        name = label(case_labels.EVENT_FIELDS, key)
        parts.append(f"{name}: {_value(key, value, display, titles)}")
    return "; ".join(parts)


def event_row(
    event: CaseEvent, users: dict[int, str], display: Display, titles: Titles | None = None
) -> EventRow:
    return EventRow(
        at=local_time(event.at, display.zone),
        kind=label(case_labels.EVENT_KINDS, event.kind),
        change=_change(event),
        user=users.get(event.user_id, "") if event.user_id is not None else "",
        reason=event.reason,
        details=_details(event, display, titles),
    )


def case_detail(
    case: Case,
    display: Display,
    policy: cases.CasePolicy,
    departments: dict[str, tuple[str, str]],
    users: dict[int, str],
    now: datetime,
) -> CaseDetail:
    zone = display.zone
    return CaseDetail(
        row=case_row(case, display, policy, departments),
        complexity=label(case_labels.COMPLEXITIES, case.complexity),
        urgency=label(case_labels.URGENCIES, case.urgency),
        content=case.content,
        persons_involved=case.persons_involved,
        contact_other=case.contact_other,
        owner=users.get(case.owner_id, "") if case.owner_id is not None else "",
        escalation=label(case_labels.ESCALATION_LEVELS, case.escalation_level),
        follow_up=label(case_labels.FOLLOW_UPS, case.follow_up),
        follow_up_date=case.follow_up_date.isoformat() if case.follow_up_date else "",
        solution=case.solution,
        remedy=label(case_labels.REMEDIES, case.remedy),
        result=case.result,
        satisfaction=str(case.satisfaction) if case.satisfaction is not None else "",
        redispatch_count=case.redispatch_count,
        signed_off=local_time(case.signed_off_at, zone),
        first_reply_due=local_time(case.first_reply_due_at, zone),
        first_replied=local_time(case.first_replied_at, zone),
        first_reply_late=(case.first_replied_at or now) > case.first_reply_due_at,
        promised_reply=local_time(case.promised_reply_at, zone),
        promise_missed=case.promised_reply_at is not None
        and case.promised_reply_at < now
        and case.status not in ("customer_replied", "callback_done", "closed"),
        closed=local_time(case.closed_at, zone),
        events=[event_row(event, users, display, Titles(policy, departments)) for event in case.history],
        calls=[
            CallLink(
                id=call.id,
                started=local_time(call.started_at, zone),
                talk=duration(call.talk_s),
                recordings=[recording_row(recording, zone) for recording in call.recordings],
            )
            for call in case.calls
        ],
        attachments=[
            AttachmentRow(a.id, a.filename, file_size(a.size_bytes), local_time(a.created_at, zone))
            for a in case.attachments
        ],
        numbers_revealed=display.reveal_numbers,
    )


@dataclass(frozen=True)
class NoticeRow:
    id: int
    case_id: int | None
    number: str
    kind: str
    text: str
    sample_id: int | None
    due: str
    created: str


def notice_row(notice: Notice, display: Display) -> NoticeRow:
    sample_id = notice.data.get("sample_id")
    return NoticeRow(
        id=notice.id,
        case_id=notice.case_id,
        number=str(notice.data.get("number", "")),
        kind=notice.kind,
        text=labels.label(labels.NOTICE_KINDS, notice.kind),
        sample_id=sample_id if isinstance(sample_id, int) else None,
        due=local_time(notice.due_at, display.zone),
        created=local_time(notice.created_at, display.zone),
    )
