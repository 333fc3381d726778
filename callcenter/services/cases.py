"""Cases (工单): registration and the operations on a case.

Every function takes the acting ``User`` and an aware ``now``; nothing here reads the clock. Every change
is a timestamped ``CaseEvent`` (the KPIs are computed from them). The rules (state graph, deadlines,
who may do what) are in ``case_rules.py``, the SLA sweep in ``case_sweep.py``; both are re-exported
here, so callers need only this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from callcenter.db import insert_ignoring_duplicates
from callcenter.exceptions import NotFound
from callcenter.models import AuditLog, Call, CallbackTask, Case, CaseAttachment, Notice, User
from callcenter.models.case import (
    CASE_CHANNELS,
    CASE_TYPES,
    COMPLEXITIES,
    FOLLOW_UPS,
    REMEDIES,
    URGENCIES,
)
from callcenter.models.user import UserRole
from callcenter.phone import normalise
from callcenter.services.callers import find_caller
from callcenter.services.case_rules import (
    AGENT_ROLES,
    ALL_CASES_ROLES,
    CALLBACK_ROLES,
    CASE_ROLES,
    CREATE_ROLES,
    DISPATCH_ROLES,
    END_OF_DAY,
    NUMBER_ATTEMPTS,
    TRANSITIONS,
    CaseError,
    CaseForbidden,
    CasePolicy,
    IllegalTransition,
    add_event,
    allowed_actions,
    audit_passed,
    can_view,
    check_transition,
    end_of_day,
    first_reply_due,
    format_number,
    move,
    next_escalation,
    number_prefix,
    require,
    resolution_due,
)
from callcenter.services.case_sweep import SweepResult, mark_notice_read, sweep, unread_notices
from callcenter.settings import CaseRules

__all__ = [
    "AGENT_ROLES",
    "ALL_CASES_ROLES",
    "CALLBACK_ROLES",
    "CASE_ROLES",
    "CREATE_ROLES",
    "DISPATCH_ROLES",
    "END_OF_DAY",
    "TRANSITIONS",
    "AttachmentStore",
    "CaseError",
    "CaseForbidden",
    "CasePolicy",
    "IllegalTransition",
    "NewCase",
    "SweepResult",
    "add_attachment",
    "allowed_actions",
    "assign",
    "audit_reply",
    "can_view",
    "check_transition",
    "classify",
    "close",
    "complaint_callback_key",
    "complete_callback",
    "decide_solution",
    "end_of_day",
    "escalate",
    "extend_deadline",
    "first_reply_due",
    "format_number",
    "get_case",
    "link_call",
    "mark_notice_read",
    "next_escalation",
    "number_prefix",
    "promise_reply",
    "record_first_reply",
    "redispatch",
    "register_case",
    "reopen",
    "resolution_due",
    "send_reply",
    "set_follow_up",
    "sign_off",
    "submit_solution",
    "sweep",
    "unread_notices",
]


@dataclass
class NewCase:
    """What registration needs; phone cases also name their calls (``call_ids``)."""

    case_type: str
    channel: str = "phone"
    title: str = ""
    content: str = ""
    category: str = "other"
    complexity: str = "ordinary"
    urgency: str = "normal"
    contact_name: str = ""
    contact_number: str = ""
    contact_other: str = ""
    persons_involved: str = ""
    caller_id: int | None = None
    agent_id: int | None = None
    queue_name: str | None = None
    call_ids: list[int] = field(default_factory=list)


def _audit(
    session: Session, user: User, now: datetime, action: str, case: Case, reason: str, **data: Any
) -> None:
    session.add(
        AuditLog(
            at=now,
            user_id=user.id,
            username=user.username,
            action=action,
            object_type="case",
            object_id=str(case.id),
            reason=reason,
            data=data,
        )
    )


# --- registration ----------------------------------------------------------------------------------


def _validate_new(new: NewCase, policy: CasePolicy) -> None:
    checks = [
        ("case type", new.case_type, CASE_TYPES),
        ("channel", new.channel, CASE_CHANNELS),
        ("category", new.category, policy.category_codes),
        ("complexity", new.complexity, COMPLEXITIES),
        ("urgency", new.urgency, URGENCIES),
    ]
    for name, value, allowed in checks:
        if value not in allowed:
            raise CaseError(f"unknown {name} {value!r}")
    if not (new.content.strip() or new.title.strip()):
        raise CaseError("a case needs a title or content")


def register_case(session: Session, new: NewCase, *, user: User, policy: CasePolicy, now: datetime) -> Case:
    """Register a case: number, deadlines, linked calls, repeat flag and a first history entry."""
    if not user.has_role(*CREATE_ROLES):
        raise CaseForbidden(f"{user.username} may not register cases")
    _validate_new(new, policy)
    number = normalise(new.contact_number, policy.region) if new.contact_number.strip() else None
    case = Case(
        case_type=new.case_type,
        channel=new.channel,
        status="registered",
        category=new.category,
        complexity=new.complexity,
        urgency=new.urgency,
        title=new.title.strip()[:200],
        content=new.content,
        persons_involved=new.persons_involved,
        caller_id=new.caller_id,
        contact_name=new.contact_name.strip()[:128],
        contact_e164=number.e164 if number is not None else None,
        contact_other=(new.contact_other or (number.raw if number and not number.valid else ""))[:255],
        agent_id=new.agent_id if new.agent_id is not None else (user.agent.id if user.agent else None),
        queue_name=new.queue_name or _default_queue(user, new.case_type),
        created_by_id=user.id,
        owner_id=user.id,
        escalation_level="agent",
        registered_at=now,
        first_reply_due_at=first_reply_due(now, new.urgency, policy.rules),
        resolution_due_at=resolution_due(now, new.complexity, policy),
        updated_at=now,
    )
    if case.caller_id is None and case.contact_e164:
        found = find_caller(session, case.contact_e164)
        case.caller_id = found.id if found is not None else None
    for call_id in new.call_ids:
        _link(session, case, call_id)
    add_event(case, "status", user, now, to_status="registered", data={"channel": new.channel})
    _insert_numbered(session, case, policy.zone)
    _flag_repeat(session, case, policy.rules, user, now)
    if case.urgency == "major":
        _notify_managers(session, case, now)
    return case


def _default_queue(user: User, case_type: str) -> str | None:
    """A case entered by hand belongs to the queue its type comes in on, if the agent serves it
    (so the agent's colleagues in that queue see it), else to the agent's first queue."""
    served = [queue.name for queue in user.agent.queues] if user.agent is not None else []
    wanted = "complaint" if case_type == "complaint" else "consultation"
    return wanted if wanted in served else (served[0] if served else None)


def _insert_numbered(session: Session, case: Case, zone: ZoneInfo) -> None:
    """Give the case the day's next number. Two registrations racing for one number: the loser's
    INSERT hits the unique constraint inside its savepoint and it takes the next number."""
    prefix = number_prefix(case.registered_at, zone)
    for _attempt in range(NUMBER_ATTEMPTS):
        case.number = format_number(prefix, _last_sequence(session, prefix) + 1)
        try:
            with session.begin_nested():
                session.add(case)
                session.flush()
            return
        except IntegrityError:
            if case in session:  # the savepoint's rollback usually expunged it already
                session.expunge(case)
    raise CaseError(f"no free case number for {prefix} after {NUMBER_ATTEMPTS} attempts")


def _last_sequence(session: Session, prefix: str) -> int:
    query = (
        select(Case.number)
        .where(Case.number.like(prefix + "%"))
        .order_by(func.length(Case.number).desc(), Case.number.desc())
        .limit(1)
    )
    last = session.execute(query).scalar_one_or_none()
    return int(last[len(prefix) :]) if last else 0


def _link(session: Session, case: Case, call_id: int) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id}")
    if call not in case.calls:
        case.calls.append(call)
    if case.caller_id is None:
        case.caller_id = call.caller_id
    return call


def link_call(session: Session, case_id: int, call_id: int, *, user: User, now: datetime) -> Case:
    """Link another call (and so its recordings) to the case."""
    case = get_case(session, case_id)
    require(user, case, "link_call")
    _link(session, case, call_id)
    add_event(case, "call_linked", user, now, data={"call_id": call_id})
    return case


def _flag_repeat(session: Session, case: Case, rules: CaseRules, user: User | None, now: datetime) -> None:
    """A complaint from the same customer in the same category within the window is a repeat (C31)."""
    if case.case_type != "complaint" or case.is_repeat:
        return
    same_customer = []
    if case.caller_id is not None:
        same_customer.append(Case.caller_id == case.caller_id)
    if case.contact_e164:
        same_customer.append(Case.contact_e164 == case.contact_e164)
    if not same_customer:
        return
    since = case.registered_at - timedelta(days=rules.repeat_window_days)
    query = (
        select(Case.id, Case.number)
        .where(
            Case.case_type == "complaint",
            Case.category == case.category,
            Case.id != case.id,
            Case.registered_at >= since,
            Case.registered_at <= case.registered_at,
            or_(*same_customer),
        )
        .order_by(Case.registered_at.desc(), Case.id.desc())
        .limit(1)
    )
    previous = session.execute(query).first()
    if previous is None:
        return
    case.is_repeat, case.repeat_of_id = True, previous.id
    add_event(case, "repeat_flagged", user, now, data={"repeat_of": previous.number})


def _notify_managers(session: Session, case: Case, now: datetime) -> None:
    """Major cases are put in front of every manager (C33)."""
    managers = session.execute(select(UserRole.user_id).where(UserRole.role == "manager")).scalars().all()
    rows = [
        {
            "key": f"case:{case.id}:major:{user_id}",
            "user_id": user_id,
            "kind": "major_case",
            "case_id": case.id,
            "data": {"number": case.number},
            "due_at": case.first_reply_due_at,
            "created_at": now,
            "read_at": None,
        }
        for user_id in managers
    ]
    insert_ignoring_duplicates(session, Notice, rows, ["key"])


# --- reading ---------------------------------------------------------------------------------------


def get_case(session: Session, case_id: int) -> Case:
    case = session.execute(
        select(Case)
        .where(Case.id == case_id)
        .options(
            selectinload(Case.history),
            selectinload(Case.attachments),
            selectinload(Case.calls).selectinload(Call.recordings),
            selectinload(Case.agent),
            selectinload(Case.caller),
            selectinload(Case.owner),
        )
    ).scalar_one_or_none()
    if case is None:
        raise NotFound(f"case {case_id}")
    return case


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id}")
    return user


# --- the operations --------------------------------------------------------------------------------


def classify(
    session: Session,
    case_id: int,
    *,
    category: str,
    complexity: str,
    urgency: str,
    user: User,
    policy: CasePolicy,
    now: datetime,
) -> Case:
    """registered → classified; complexity fixes the resolution deadline (unless already extended)."""
    case = get_case(session, case_id)
    require(user, case, "classify")
    if category not in policy.category_codes or complexity not in COMPLEXITIES or urgency not in URGENCIES:
        raise CaseError("unknown category, complexity or urgency")
    was_major = case.urgency == "major"
    case.category, case.complexity, case.urgency = category, complexity, urgency
    if not any(event.kind == "extended" for event in case.history):
        case.resolution_due_at = resolution_due(case.registered_at, complexity, policy)
    case.first_reply_due_at = first_reply_due(case.registered_at, urgency, policy.rules)
    move(case, "classified", user, now, category=category, complexity=complexity, urgency=urgency)
    _flag_repeat(session, case, policy.rules, user, now)
    if urgency == "major" and not was_major:
        _notify_managers(session, case, now)
    return case


def _known_department(department: str, departments: Iterable[str]) -> None:
    if department not in departments:
        raise CaseError(f"unknown department {department!r}")


def assign(
    session: Session,
    case_id: int,
    *,
    department: str,
    departments: Sequence[str],
    user: User,
    now: datetime,
    owner_id: int | None = None,
) -> Case:
    """classified/reopened → assigned to a department (and optionally an owner there)."""
    case = get_case(session, case_id)
    require(user, case, "assign")
    _known_department(department, departments)
    case.department, case.signed_off_at = department, None
    if owner_id is not None:
        case.owner_id = get_user(session, owner_id).id
    move(case, "assigned", user, now, department=department)
    return case


def sign_off(session: Session, case_id: int, *, user: User, now: datetime) -> Case:
    """签收: a handler of the receiving department takes the case; it becomes theirs, in progress."""
    case = get_case(session, case_id)
    require(user, case, "sign_off")
    case.signed_off_at, case.owner_id = now, user.id
    move(case, "in_progress", user, now, department=case.department)
    return case


def redispatch(
    session: Session,
    case_id: int,
    *,
    department: str,
    reason: str,
    departments: Sequence[str],
    user: User,
    now: datetime,
) -> Case:
    """转派 to another department: reason required, counted; the new department signs off again."""
    case = get_case(session, case_id)
    require(user, case, "redispatch")
    _known_department(department, departments)
    if not reason.strip():
        raise CaseError("a re-dispatch needs a reason")
    if department == case.department:
        raise CaseError("the case is already with that department")
    old = case.department
    case.department, case.signed_off_at, case.owner_id = department, None, None
    case.redispatch_count += 1
    data = {"from_department": old, "to_department": department, "count": case.redispatch_count}
    add_event(case, "redispatched", user, now, reason=reason.strip(), data=data)
    if case.status != "assigned":
        move(case, "assigned", user, now, reason=reason.strip(), department=department)
    return case


def submit_solution(
    session: Session, case_id: int, *, solution: str, remedy: str, user: User, now: datetime
) -> Case:
    case = get_case(session, case_id)
    require(user, case, "submit_solution")
    if not solution.strip():
        raise CaseError("the solution is empty")
    if remedy not in REMEDIES:
        raise CaseError(f"unknown remedy {remedy!r}")
    case.solution, case.remedy = solution.strip(), remedy
    move(case, "solution_pending_approval", user, now, remedy=remedy)
    return case


def decide_solution(
    session: Session, case_id: int, *, approve: bool, note: str = "", user: User, now: datetime
) -> Case:
    """Only the head of the owning department approves (C27); a rejection sends the case back."""
    case = get_case(session, case_id)
    require(user, case, "approve_solution")
    if approve:
        move(case, "solution_approved", user, now, reason=note.strip(), approved_by=user.username)
    else:
        if not note.strip():
            raise CaseError("a rejection needs a reason")
        move(case, "in_progress", user, now, reason=note.strip(), rejected_by=user.username)
    return case


def audit_reply(
    session: Session, case_id: int, *, passed: bool, note: str = "", user: User, now: datetime
) -> Case:
    """审核: a reviewer checks the reply before it goes to the customer; only a pass lets it go."""
    case = get_case(session, case_id)
    require(user, case, "audit_reply")
    if not passed and not note.strip():
        raise CaseError("a failed audit needs a reason")
    add_event(case, "reply_audit", user, now, reason=note.strip(), data={"passed": passed})
    return case


def send_reply(
    session: Session, case_id: int, *, result: str, user: User, policy: CasePolicy, now: datetime
) -> Case:
    """solution_approved → customer_replied; a complaint gets its complaint callback task."""
    case = get_case(session, case_id)
    if case.status == "solution_approved" and not audit_passed(case) and can_view(user, case):
        raise CaseError("the reply has not passed its audit")
    require(user, case, "send_reply")
    if not result.strip():
        raise CaseError("the reply is empty")
    case.result = result.strip()
    if case.first_replied_at is None:
        case.first_replied_at = now
    move(case, "customer_replied", user, now)
    if case.case_type == "complaint":
        _complaint_callback(session, case, policy.rules, now)
    return case


def complaint_callback_key(case_id: int) -> str:
    return f"case:{case_id}:complaint-callback"


def _complaint_callback(session: Session, case: Case, rules: CaseRules, now: datetime) -> None:
    _callback_task(
        session,
        case,
        key=complaint_callback_key(case.id),
        kind="complaint",
        due_at=now + timedelta(hours=rules.complaint_callback_hours),
        now=now,
    )


def _callback_task(
    session: Session, case: Case, *, key: str, kind: str, due_at: datetime, now: datetime
) -> None:
    row = {
        "key": key,
        "kind": kind,
        "status": "pending" if case.contact_e164 else "unreachable",
        "number_raw": case.contact_e164 or case.contact_other,
        "number_e164": case.contact_e164,
        "caller_id": case.caller_id,
        "call_id": case.calls[0].id if case.calls else None,
        "queue_name": case.queue_name,
        "language": "zh",
        "priority": 0,
        "due_at": due_at,
        "enqueued_at": None,
        "attempts": 0,
        "note": case.number,
        "data": {"case_id": case.id},
        "created_at": now,
        "updated_at": now,
    }
    insert_ignoring_duplicates(session, CallbackTask, [row], ["key"])


def complete_callback(
    session: Session,
    case_id: int,
    *,
    outcome: str,
    satisfaction: int,
    user: User,
    now: datetime,
    policy: CasePolicy | None = None,
) -> Case:
    """The complaint callback (投诉回访) was made: record outcome and satisfaction (1–5) on the case,
    finish the callback task and move customer_replied → callback_done. A dissatisfied answer puts
    the case on the dissatisfied list (follow-up ``dissatisfied_with_result``)."""
    case = get_case(session, case_id)
    require(user, case, "complete_callback")
    if not 1 <= satisfaction <= 5:
        raise CaseError("satisfaction is 1–5")
    if not outcome.strip():
        raise CaseError("the callback needs an outcome")
    threshold = policy.rules.dissatisfied_below if policy is not None else CaseRules().dissatisfied_below
    case.satisfaction = satisfaction
    if satisfaction < threshold:
        case.follow_up, case.follow_up_date = "dissatisfied_with_result", None
    data = {"outcome": outcome.strip(), "satisfaction": satisfaction}
    add_event(case, "callback_recorded", user, now, data=data)
    move(case, "callback_done", user, now)
    task = session.execute(
        select(CallbackTask).where(CallbackTask.key == complaint_callback_key(case.id))
    ).scalar_one_or_none()
    if task is not None and task.status not in ("done", "cancelled"):
        task.status, task.updated_at = "done", now
    return case


def close(session: Session, case_id: int, *, user: User, now: datetime, note: str = "") -> Case:
    case = get_case(session, case_id)
    if case.case_type == "complaint" and case.status == "customer_replied":
        raise IllegalTransition(case.status, "closed", "the complaint callback is not recorded yet")
    if case.status in TRANSITIONS and "closed" not in TRANSITIONS[case.status]:
        raise IllegalTransition(case.status, "closed")
    require(user, case, "close")
    case.closed_at = now
    move(case, "closed", user, now, reason=note.strip())
    return case


def reopen(session: Session, case_id: int, *, reason: str, user: User, now: datetime) -> Case:
    case = get_case(session, case_id)
    require(user, case, "reopen")
    if not reason.strip():
        raise CaseError("reopening needs a reason")
    case.closed_at, case.signed_off_at = None, None
    move(case, "reopened", user, now, reason=reason.strip())
    return case


def escalate(session: Session, case_id: int, *, reason: str, user: User, now: datetime) -> Case:
    """One level up: agent → team leader → supervisor → manager, by hand, in any open state."""
    case = get_case(session, case_id)
    require(user, case, "escalate")
    target = next_escalation(case.escalation_level)
    assert target is not None  # allowed_actions refuses at the top
    old, case.escalation_level = case.escalation_level, target
    add_event(case, "escalated", user, now, reason=reason.strip(), data={"from": old, "to": target})
    return case


def extend_deadline(
    session: Session, case_id: int, *, new_due: datetime, reason: str, user: User, now: datetime
) -> Case:
    """Only the complaint-department head extends (C25); approver, reason, old and new date are kept
    on the case's history and in the audit log. An extension clears ``delayed`` if the case is no
    longer late."""
    case = get_case(session, case_id)
    if not user.has_role("complaint_head"):
        raise CaseForbidden(f"{user.username} is not the complaint-department head")
    require(user, case, "extend")
    if not reason.strip():
        raise CaseError("an extension needs a reason")
    if new_due <= case.resolution_due_at:
        raise CaseError("the new due date must be later than the current one")
    old = case.resolution_due_at
    case.resolution_due_at = new_due
    if case.delayed and new_due > now:
        case.delayed = False
    data = {"old_due": old.isoformat(), "new_due": new_due.isoformat(), "approver": user.username}
    add_event(case, "extended", user, now, reason=reason.strip(), data=data)
    _audit(session, user, now, "case.extend", case, reason.strip(), **data)
    return case


def set_follow_up(
    session: Session,
    case_id: int,
    *,
    follow_up: str | None,
    follow_up_date: date | None = None,
    user: User,
    now: datetime,
) -> Case:
    case = get_case(session, case_id)
    require(user, case, "follow_up")
    if follow_up is not None and follow_up not in FOLLOW_UPS:
        raise CaseError(f"unknown follow-up {follow_up!r}")
    if follow_up == "resolve_in_n_days" and follow_up_date is None:
        raise CaseError("'resolve in n days' needs the date")
    case.follow_up = follow_up
    case.follow_up_date = follow_up_date if follow_up == "resolve_in_n_days" else None
    day = case.follow_up_date.isoformat() if case.follow_up_date else None
    add_event(case, "follow_up", user, now, data={"follow_up": follow_up, "date": day})
    return case


def promise_key(case_id: int, at: datetime) -> str:
    return f"case:{case_id}:promised-reply:{at.astimezone(ZoneInfo('UTC')):%Y%m%dT%H%M%SZ}"


def promise_reply(session: Session, case_id: int, *, at: datetime, user: User, now: datetime) -> Case:
    """The customer was promised a reply at ``at`` (B17): a ``promised_reply`` callback task due then;
    the sweep warns the owner before it."""
    case = get_case(session, case_id)
    require(user, case, "promise")
    if at <= now:
        raise CaseError("a promised reply time must be in the future")
    case.promised_reply_at = at
    _callback_task(session, case, key=promise_key(case.id, at), kind="promised_reply", due_at=at, now=now)
    add_event(case, "promised_reply", user, now, data={"at": at.isoformat()})
    return case


def record_first_reply(session: Session, case_id: int, *, note: str, user: User, now: datetime) -> Case:
    """The customer heard from us (C23's first reply), before the final answer."""
    case = get_case(session, case_id)
    require(user, case, "first_reply")
    case.first_replied_at = now
    late = now > case.first_reply_due_at
    add_event(case, "first_reply", user, now, reason=note.strip(), data={"late": late})
    return case


def add_attachment(
    session: Session,
    case_id: int,
    *,
    filename: str,
    content_type: str,
    content: bytes,
    store: AttachmentStore,
    user: User,
    now: datetime,
) -> CaseAttachment:
    case = get_case(session, case_id)
    require(user, case, "attach")
    if len(content) > store.max_bytes:
        raise CaseError(f"the file is larger than {store.max_bytes // 1_000_000} MB")
    if not content:
        raise CaseError("the file is empty")
    digest = hashlib.sha256(content).hexdigest()
    uri = store.save(digest, content)
    attachment = CaseAttachment(
        filename=_safe_filename(filename),
        content_type=content_type[:128] or "application/octet-stream",
        size_bytes=len(content),
        sha256=digest,
        uri=uri,
        uploaded_by_id=user.id,
        created_at=now,
    )
    case.attachments.append(attachment)
    add_event(case, "attachment", user, now, data={"filename": attachment.filename, "sha256": digest})
    session.flush()
    return attachment


def _safe_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>|:*?').strip()
    return cleaned[:255] or "attachment"


@dataclass(frozen=True)
class AttachmentStore:
    """Attachments on disk, named by their sha256 (the same file twice is stored once)."""

    root: Any  # pathlib.Path
    max_bytes: int

    def save(self, digest: str, content: bytes) -> str:
        relative = f"{digest[:2]}/{digest}"
        path = self.root / relative
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(content)
            tmp.replace(path)
        return relative

    def path(self, uri: str) -> Any:
        if "/" not in uri or ".." in uri or uri.startswith("/"):
            raise NotFound(uri)
        return self.root / uri
