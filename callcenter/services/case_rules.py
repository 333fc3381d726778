"""The rules of a case, without the database: the state graph, deadlines, numbers, escalation, and who
may do what (:func:`allowed_actions`, the one place that decides; the web shows only those actions and
the operations in ``cases.py`` check it again). Plus the one helper that writes history.

The state graph (``TRANSITIONS``) is the rulebook's chain plus the edges a real case needs:
a rejected solution goes back to ``in_progress``; a re-dispatch (转派) moves an ``in_progress`` case
back to ``assigned`` in its new department; a consultation, suggestion or fault report may close once
the customer has the reply (only a complaint must wait for its callback, C28); a case is ``reopened``
from ``customer_replied``, ``callback_done`` or ``closed`` and leaves ``reopened`` for ``assigned``
(re-dispatched or re-assigned) or ``in_progress`` (signed off again by its department).

Deadlines: the first reply is due ``first_reply_hours`` after registration (``major_reply_hours`` for a
major case); the resolution is due at the end (23:59:59 in the organisation's zone) of the n-th working
day after the registration day, the registration day not counted, on the statutory calendar with
make-up working days (:class:`callcenter.workdays.WorkCalendar`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.exceptions import CallcenterError
from callcenter.models import Case, CaseEvent, User
from callcenter.models.case import CASE_STATUSES, ESCALATION_LEVELS
from callcenter.settings import CaseRules, Settings
from callcenter.workdays import WorkCalendar

NUMBER_PREFIX = "TS"
NUMBER_ATTEMPTS = 20
END_OF_DAY = time(23, 59, 59)

TRANSITIONS: Mapping[str, frozenset[str]] = {
    "registered": frozenset({"classified"}),
    "classified": frozenset({"assigned"}),
    "assigned": frozenset({"in_progress"}),
    "in_progress": frozenset({"solution_pending_approval", "assigned"}),
    "solution_pending_approval": frozenset({"solution_approved", "in_progress"}),
    "solution_approved": frozenset({"customer_replied"}),
    "customer_replied": frozenset({"callback_done", "closed", "reopened"}),
    "callback_done": frozenset({"closed", "reopened"}),
    "closed": frozenset({"reopened"}),
    "reopened": frozenset({"assigned", "in_progress"}),
}
OPEN_STATUSES = tuple(status for status in CASE_STATUSES if status != "closed")

# Who sees and steers every case; agents see their own and their queues'; handlers their department's.
ALL_CASES_ROLES = ("admin", "team_leader", "supervisor", "complaint_head", "manager", "callback_specialist")
DISPATCH_ROLES = ("admin", "team_leader", "supervisor", "complaint_head", "manager")
AGENT_ROLES = ("agent_consultation", "agent_complaint")
CREATE_ROLES = (*AGENT_ROLES, *DISPATCH_ROLES)
CALLBACK_ROLES = ("callback_specialist", "team_leader", "supervisor", "complaint_head", "manager", "admin")
CASE_ROLES = (*ALL_CASES_ROLES, *AGENT_ROLES, "department_handler")


class CaseError(CallcenterError):
    """A case operation that cannot be done as asked (bad input, missing precondition)."""


class IllegalTransition(CaseError):
    def __init__(self, from_status: str, to_status: str, why: str = "") -> None:
        self.from_status, self.to_status = from_status, to_status
        detail = f": {why}" if why else ""
        super().__init__(f"a case cannot go from {from_status!r} to {to_status!r}{detail}")


class CaseForbidden(CaseError):
    """The user's role does not allow this operation on this case."""


@dataclass(frozen=True)
class CasePolicy:
    """The numbers and calendar the operations need, built once from settings."""

    rules: CaseRules
    calendar: WorkCalendar
    zone: ZoneInfo
    region: str = "CN"

    @classmethod
    def from_settings(cls, settings: Settings) -> CasePolicy:
        calendar = WorkCalendar(settings.calendar.extra_holidays, settings.calendar.extra_workdays)
        return cls(settings.cases, calendar, settings.zone, settings.organisation.phone_region)

    @property
    def category_codes(self) -> tuple[str, ...]:
        return tuple(category.code for category in self.rules.categories)


# --- pure rules ------------------------------------------------------------------------------------


def check_transition(from_status: str, to_status: str) -> None:
    """Raise :class:`IllegalTransition` unless ``from_status → to_status`` is an edge of the graph."""
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        raise IllegalTransition(from_status, to_status)


def first_reply_due(registered_at: datetime, urgency: str, rules: CaseRules) -> datetime:
    hours = rules.major_reply_hours if urgency == "major" else rules.first_reply_hours
    return registered_at + timedelta(hours=hours)


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, END_OF_DAY, tzinfo=zone)


def resolution_due(registered_at: datetime, complexity: str, policy: CasePolicy) -> datetime:
    """End of the n-th working day after the registration day (in the organisation's zone)."""
    days = policy.rules.complex_days if complexity == "complex" else policy.rules.ordinary_days
    registered_day = registered_at.astimezone(policy.zone).date()
    return end_of_day(policy.calendar.add_working_days(registered_day, days), policy.zone)


def number_prefix(registered_at: datetime, zone: ZoneInfo) -> str:
    return f"{NUMBER_PREFIX}-{registered_at.astimezone(zone):%Y%m%d}-"


def format_number(prefix: str, sequence: int) -> str:
    return f"{prefix}{sequence:04d}"


def next_escalation(level: str) -> str | None:
    index = ESCALATION_LEVELS.index(level)
    return ESCALATION_LEVELS[index + 1] if index + 1 < len(ESCALATION_LEVELS) else None


# --- who may do what -------------------------------------------------------------------------------


def _in_department(user: User, case: Case) -> bool:
    return (
        user.has_role("department_handler") and bool(case.department) and user.department == case.department
    )


def _is_department_head(user: User, case: Case) -> bool:
    return _in_department(user, case) and user.is_department_head


def _is_own(user: User, case: Case) -> bool:
    """The agent took the case, created it, or owns it."""
    if user.id in (case.created_by_id, case.owner_id):
        return True
    return case.agent is not None and case.agent.user_id == user.id


def _agent_queue_names(user: User) -> set[str]:
    return {queue.name for queue in user.agent.queues} if user.agent is not None else set()


def can_view(user: User, case: Case) -> bool:
    if user.has_role(*ALL_CASES_ROLES) or _in_department(user, case):
        return True
    if user.has_role(*AGENT_ROLES):
        return _is_own(user, case) or (case.queue_name in _agent_queue_names(user))
    return False


def _intake(user: User, case: Case) -> bool:
    """Registers, classifies and assigns: dispatchers, and the agent on their own case."""
    return user.has_role(*DISPATCH_ROLES) or (user.has_role(*AGENT_ROLES) and _is_own(user, case))


def audit_passed(case: Case) -> bool:
    """A reply audit passed since the solution was last approved."""
    passed = False
    for event in case.history:
        if event.kind == "status" and event.to_status == "solution_approved":
            passed = False
        elif event.kind == "reply_audit":
            passed = bool(event.data.get("passed"))
    return passed


def allowed_actions(user: User, case: Case) -> frozenset[str]:
    """The operations ``user`` may perform on ``case`` now (its state and the user's roles)."""
    if not can_view(user, case):
        return frozenset()
    status, actions = case.status, set()
    handler = _in_department(user, case)
    intake = _intake(user, case)
    rules: list[tuple[str, bool]] = [
        ("classify", status == "registered" and intake),
        ("assign", status in ("classified", "reopened") and intake),
        ("sign_off", status in ("assigned", "reopened") and handler and case.signed_off_at is None),
        ("redispatch", status in ("assigned", "in_progress", "reopened") and (handler or intake)),
        ("submit_solution", status == "in_progress" and handler),
        ("approve_solution", status == "solution_pending_approval" and _is_department_head(user, case)),
        ("audit_reply", status == "solution_approved" and (handler or user.has_role("complaint_head"))),
        ("send_reply", status == "solution_approved" and (handler or intake) and audit_passed(case)),
        ("complete_callback", status == "customer_replied" and user.has_role(*CALLBACK_ROLES)),
        ("close", _closable(case) and (intake or user.has_role("callback_specialist"))),
        (
            "reopen",
            status in ("customer_replied", "callback_done", "closed") and user.has_role(*DISPATCH_ROLES),
        ),
        ("escalate", next_escalation(case.escalation_level) is not None and status != "closed"),
        ("extend", status != "closed" and user.has_role("complaint_head")),
        ("follow_up", status != "closed" and (intake or handler or user.has_role(*CALLBACK_ROLES))),
        ("promise", status != "closed" and (intake or handler)),
        ("first_reply", case.first_replied_at is None and status != "closed" and (intake or handler)),
        ("attach", status != "closed"),
        ("link_call", status != "closed" and intake),
    ]
    actions = {name for name, allowed in rules if allowed}
    return frozenset(actions)


def _closable(case: Case) -> bool:
    if case.status == "callback_done":
        return True
    return case.status == "customer_replied" and case.case_type != "complaint"


def require(user: User, case: Case, action: str) -> None:
    if action not in allowed_actions(user, case):
        raise CaseForbidden(f"{user.username} may not {action} case {case.number} ({case.status})")


# --- history ---------------------------------------------------------------------------------------


def add_event(
    case: Case,
    kind: str,
    user: User | None,
    now: datetime,
    *,
    reason: str = "",
    data: dict[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> CaseEvent:
    event = CaseEvent(
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        user_id=user.id if user is not None else None,
        reason=reason,
        data=data or {},
        at=now,
    )
    case.history.append(event)
    case.updated_at = now
    return event


def move(case: Case, to_status: str, user: User, now: datetime, *, reason: str = "", **data: Any) -> None:
    check_transition(case.status, to_status)
    from_status, case.status = case.status, to_status
    add_event(
        case, "status", user, now, reason=reason, data=data, from_status=from_status, to_status=to_status
    )
