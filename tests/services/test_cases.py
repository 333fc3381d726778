"""The case service on SQLite and PostgreSQL, with a fixed ``now``: numbering, the state machine, SLAs,
who may do what, the complaint callback, repeats and the sweep."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.models import AuditLog, CallbackTask, Case, Notice, User
from callcenter.models.case import CASE_STATUSES
from callcenter.services import cases
from callcenter.services.cases import CaseError, CaseForbidden, IllegalTransition
from callcenter.settings import load_settings
from tests.services.case_helpers import complaint, person, policy

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEPARTMENTS = ("after_sales", "tech_rd", "product_rd")
POLICY = policy()


@dataclass
class Staff:
    agent: User
    other_agent: User
    leader: User
    head: User  # complaint-department head
    handler: User  # after-sales handler
    dept_head: User  # after-sales head
    other_head: User  # tech R&D head
    callback: User
    manager: User


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.transaction() as session:
        yield session


@pytest.fixture
def staff(session: Session, now: datetime) -> Staff:
    return Staff(
        agent=person(session, "agent", "agent_complaint", now=now, queues=("complaint",)),
        other_agent=person(session, "other", "agent_consultation", now=now, queues=("consultation",)),
        leader=person(session, "leader", "team_leader", now=now),
        head=person(session, "head", "complaint_head", now=now),
        handler=person(session, "handler", "department_handler", now=now, department="after_sales"),
        dept_head=person(
            session, "ashead", "department_handler", now=now, department="after_sales", head=True
        ),
        other_head=person(session, "rdhead", "department_handler", now=now, department="tech_rd", head=True),
        callback=person(session, "cb", "callback_specialist", now=now),
        manager=person(session, "manager", "manager", now=now),
    )


def register(session: Session, staff: Staff, now: datetime, **changes: object) -> Case:
    return cases.register_case(session, complaint(**changes), user=staff.agent, policy=POLICY, now=now)


def advance(session: Session, case: Case, staff: Staff, now: datetime, to: str) -> Case:
    """Walk ``case`` along the happy path until it reaches ``to``."""
    steps = [
        ("classified", lambda: cases.classify(session, case.id, category="product", complexity="ordinary",
                                               urgency="normal", user=staff.agent, policy=POLICY, now=now)),
        ("assigned", lambda: cases.assign(session, case.id, department="after_sales", departments=DEPARTMENTS,
                                           user=staff.leader, now=now)),
        ("in_progress", lambda: cases.sign_off(session, case.id, user=staff.handler, now=now)),
        ("solution_pending_approval", lambda: cases.submit_solution(
            session, case.id, solution="换新门锁", remedy="exchange", user=staff.handler, now=now)),
        ("solution_approved", lambda: cases.decide_solution(
            session, case.id, approve=True, user=staff.dept_head, now=now)),
        ("customer_replied", lambda: (
            cases.audit_reply(session, case.id, passed=True, user=staff.handler, now=now),
            cases.send_reply(session, case.id, result="已上门更换", user=staff.agent, policy=POLICY, now=now),
        )),
        ("callback_done", lambda: cases.complete_callback(
            session, case.id, outcome="reached", satisfaction=5, user=staff.callback, now=now)),
        ("closed", lambda: cases.close(session, case.id, user=staff.leader, now=now)),
    ]  # fmt: skip
    order = [status for status, _step in steps]
    start = order.index(case.status) + 1 if case.status in order else 0
    for status, step in steps[start:]:
        if case.status == to:
            break
        step()
        assert case.status == status
    return case


# --- numbering -------------------------------------------------------------------------------------


def test_numbers_count_per_day_in_the_organisations_zone(session: Session, staff: Staff) -> None:
    late_evening_utc = datetime(2026, 11, 22, 17, 30, tzinfo=UTC)  # 01:30 on the 23rd in Shanghai
    first = register(session, staff, late_evening_utc)
    second = register(session, staff, late_evening_utc + timedelta(hours=1))
    next_day = register(session, staff, datetime(2026, 11, 23, 16, 0, tzinfo=UTC))  # 00:00 on the 24th
    assert (first.number, second.number, next_day.number) == (
        "TS-20261123-0001",
        "TS-20261123-0002",
        "TS-20261124-0001",
    )


def test_a_number_taken_meanwhile_is_retried(
    session: Session, staff: Staff, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(session, staff, now)
    stale = itertools.chain([0], itertools.repeat(-1))  # the first read misses the case just written
    real = cases._last_sequence

    def racing(db_session: Session, prefix: str) -> int:
        value = next(stale)
        return value if value >= 0 else real(db_session, prefix)

    monkeypatch.setattr(cases, "_last_sequence", racing)
    again = register(session, staff, now)
    assert again.number == "TS-20261123-0002"
    assert session.execute(select(Case.number).order_by(Case.id)).scalars().all() == [
        "TS-20261123-0001",
        "TS-20261123-0002",
    ]


# --- the state graph ------------------------------------------------------------------------------


def test_every_edge_outside_the_graph_is_refused() -> None:
    refused = 0
    for source, target in itertools.product(CASE_STATUSES, repeat=2):
        if target in cases.TRANSITIONS[source]:
            cases.check_transition(source, target)
            continue
        with pytest.raises(IllegalTransition, match=f"from '{source}' to '{target}'"):
            cases.check_transition(source, target)
        refused += 1
    assert refused == len(CASE_STATUSES) ** 2 - sum(len(edges) for edges in cases.TRANSITIONS.values())


def test_the_happy_path_records_every_status_change(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now)
    for minute, status in enumerate(CASE_STATUSES[1:-1], start=1):
        advance(session, case, staff, now + timedelta(minutes=minute), status)
    statuses = [(event.from_status, event.to_status) for event in case.history if event.kind == "status"]
    assert statuses == [(None, "registered"), *itertools.pairwise(CASE_STATUSES[:-1])]
    assert [event.at for event in case.history] == sorted(event.at for event in case.history)
    assert case.closed_at == now + timedelta(minutes=8)
    assert case.first_replied_at == now + timedelta(minutes=6)


@pytest.mark.parametrize(
    ("status", "operation"),
    [
        ("registered", "sign_off"),
        ("registered", "submit_solution"),
        ("classified", "classify"),
        ("assigned", "approve"),
        ("in_progress", "send_reply"),
        ("solution_pending_approval", "close"),
        ("solution_approved", "complete_callback"),
        ("closed", "classify"),
    ],
)
def test_operations_out_of_turn_are_refused(
    session: Session, staff: Staff, now: datetime, status: str, operation: str
) -> None:
    case = advance(session, register(session, staff, now), staff, now, status)
    calls = {
        "sign_off": lambda: cases.sign_off(session, case.id, user=staff.handler, now=now),
        "submit_solution": lambda: cases.submit_solution(
            session, case.id, solution="x", remedy="none", user=staff.handler, now=now
        ),
        "classify": lambda: cases.classify(
            session, case.id, category="product", complexity="ordinary", urgency="normal",
            user=staff.leader, policy=POLICY, now=now,
        ),
        "approve": lambda: cases.decide_solution(
            session, case.id, approve=True, user=staff.dept_head, now=now
        ),
        "send_reply": lambda: cases.send_reply(
            session, case.id, result="x", user=staff.agent, policy=POLICY, now=now
        ),
        "close": lambda: cases.close(session, case.id, user=staff.leader, now=now),
        "complete_callback": lambda: cases.complete_callback(
            session, case.id, outcome="reached", satisfaction=4, user=staff.callback, now=now
        ),
    }  # fmt: skip
    with pytest.raises(CaseError):
        calls[operation]()
    assert case.status == status


def test_reopened_goes_back_to_the_department(session: Session, staff: Staff, now: datetime) -> None:
    case = advance(session, register(session, staff, now), staff, now, "closed")
    with pytest.raises(CaseForbidden):
        cases.reopen(session, case.id, reason="客户再次来电", user=staff.agent, now=now)
    cases.reopen(session, case.id, reason="客户再次来电", user=staff.leader, now=now)
    assert case.status == "reopened" and case.closed_at is None
    cases.sign_off(session, case.id, user=staff.handler, now=now)
    assert case.status == "in_progress"


def test_a_rejected_solution_goes_back_and_needs_a_reason(
    session: Session, staff: Staff, now: datetime
) -> None:
    case = advance(session, register(session, staff, now), staff, now, "solution_pending_approval")
    with pytest.raises(CaseError, match="reason"):
        cases.decide_solution(session, case.id, approve=False, user=staff.dept_head, now=now)
    cases.decide_solution(session, case.id, approve=False, note="补偿不足", user=staff.dept_head, now=now)
    assert case.status == "in_progress"


# --- SLAs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registered_local", "complexity", "due_day"),
    [
        # 2026 National Day: 1–7 October off, Saturday 10 October a make-up working day.
        (datetime(2026, 9, 30, 10, 0), "ordinary", date(2026, 10, 10)),
        (datetime(2026, 9, 30, 10, 0), "complex", date(2026, 10, 15)),
        (datetime(2026, 10, 3, 9, 0), "ordinary", date(2026, 10, 10)),  # registered on a holiday
        (datetime(2026, 10, 9, 23, 30), "ordinary", date(2026, 10, 13)),  # late Friday, Sat works
        (datetime(2026, 11, 20, 18, 0), "ordinary", date(2026, 11, 25)),  # ordinary weekend
    ],
)
def test_resolution_is_due_at_the_end_of_the_nth_working_day(
    registered_local: datetime, complexity: str, due_day: date
) -> None:
    registered = registered_local.replace(tzinfo=SHANGHAI).astimezone(UTC)
    due = cases.resolution_due(registered, complexity, POLICY)
    assert due == datetime.combine(due_day, cases.END_OF_DAY, tzinfo=SHANGHAI)


def test_registration_sets_both_deadlines(session: Session, staff: Staff) -> None:
    registered = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    case = register(session, staff, registered)
    assert case.first_reply_due_at == registered + timedelta(hours=24)
    assert case.resolution_due_at == datetime(2026, 10, 10, 23, 59, 59, tzinfo=SHANGHAI)
    cases.classify(
        session, case.id, category="product", complexity="complex", urgency="major",
        user=staff.agent, policy=POLICY, now=registered,
    )  # fmt: skip
    assert case.resolution_due_at == datetime(2026, 10, 15, 23, 59, 59, tzinfo=SHANGHAI)
    assert case.first_reply_due_at == registered + timedelta(hours=4)  # major: the manager's time


def test_only_the_complaint_head_extends(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now)
    old = case.resolution_due_at
    new_due = old + timedelta(days=5)
    for user in (staff.agent, staff.leader, staff.manager, staff.dept_head):
        with pytest.raises(CaseForbidden):
            cases.extend_deadline(session, case.id, new_due=new_due, reason="等配件", user=user, now=now)
    assert case.resolution_due_at == old
    with pytest.raises(CaseError, match="reason"):
        cases.extend_deadline(session, case.id, new_due=new_due, reason=" ", user=staff.head, now=now)
    cases.extend_deadline(session, case.id, new_due=new_due, reason="等配件", user=staff.head, now=now)
    assert case.resolution_due_at == new_due
    event = case.history[-1]
    assert (event.kind, event.user_id, event.reason) == ("extended", staff.head.id, "等配件")
    assert event.data == {"old_due": old.isoformat(), "new_due": new_due.isoformat(), "approver": "head"}
    audit = session.execute(select(AuditLog)).scalar_one()
    assert (audit.action, audit.object_id, audit.username, audit.data["old_due"]) == (
        "case.extend",
        str(case.id),
        "head",
        old.isoformat(),
    )


# --- department work -------------------------------------------------------------------------------


def test_only_the_owning_departments_head_approves(session: Session, staff: Staff, now: datetime) -> None:
    case = advance(session, register(session, staff, now), staff, now, "solution_pending_approval")
    for user in (staff.other_head, staff.handler, staff.head, staff.manager):
        with pytest.raises(CaseForbidden):
            cases.decide_solution(session, case.id, approve=True, user=user, now=now)
    cases.decide_solution(session, case.id, approve=True, user=staff.dept_head, now=now)
    assert case.status == "solution_approved"


def test_sign_off_only_by_the_receiving_department(session: Session, staff: Staff, now: datetime) -> None:
    case = advance(session, register(session, staff, now), staff, now, "assigned")
    with pytest.raises(CaseForbidden):
        cases.sign_off(session, case.id, user=staff.other_head, now=now)
    cases.sign_off(session, case.id, user=staff.handler, now=now)
    assert (case.signed_off_at, case.owner_id) == (now, staff.handler.id)


def test_redispatch_needs_a_reason_and_is_counted(session: Session, staff: Staff, now: datetime) -> None:
    case = advance(session, register(session, staff, now), staff, now, "in_progress")
    with pytest.raises(CaseError, match="reason"):
        cases.redispatch(
            session,
            case.id,
            department="tech_rd",
            reason="",
            departments=DEPARTMENTS,
            user=staff.handler,
            now=now,
        )
    cases.redispatch(
        session, case.id, department="tech_rd", reason="属于技术问题", departments=DEPARTMENTS,
        user=staff.handler, now=now,
    )  # fmt: skip
    assert (case.status, case.department, case.redispatch_count, case.signed_off_at) == (
        "assigned",
        "tech_rd",
        1,
        None,
    )
    with pytest.raises(CaseForbidden):  # after-sales no longer holds it
        cases.sign_off(session, case.id, user=staff.handler, now=now)
    redispatched = [event for event in case.history if event.kind == "redispatched"]
    assert redispatched[0].data == {"from_department": "after_sales", "to_department": "tech_rd", "count": 1}


def test_the_reply_waits_for_its_audit(session: Session, staff: Staff, now: datetime) -> None:
    case = advance(session, register(session, staff, now), staff, now, "solution_approved")
    with pytest.raises(CaseError, match="audit"):
        cases.send_reply(session, case.id, result="答复", user=staff.agent, policy=POLICY, now=now)
    with pytest.raises(CaseForbidden):
        cases.audit_reply(session, case.id, passed=True, user=staff.agent, now=now)
    cases.audit_reply(session, case.id, passed=False, note="措辞不当", user=staff.handler, now=now)
    with pytest.raises(CaseError, match="audit"):
        cases.send_reply(session, case.id, result="答复", user=staff.agent, policy=POLICY, now=now)
    cases.audit_reply(session, case.id, passed=True, user=staff.handler, now=now)
    cases.send_reply(session, case.id, result="答复", user=staff.agent, policy=POLICY, now=now)
    assert case.status == "customer_replied"


# --- the complaint callback ------------------------------------------------------------------------


def test_a_complaint_closes_only_after_its_callback(session: Session, staff: Staff, now: datetime) -> None:
    case = advance(session, register(session, staff, now), staff, now, "customer_replied")
    with pytest.raises(IllegalTransition, match="callback"):
        cases.close(session, case.id, user=staff.leader, now=now)
    task = session.execute(select(CallbackTask)).scalar_one()
    assert (task.key, task.kind, task.status, task.data) == (
        f"case:{case.id}:complaint-callback",
        "complaint",
        "pending",
        {"case_id": case.id},
    )
    assert now < task.due_at <= now + timedelta(hours=24)
    assert task.number_e164 == "+8613912345678"
    with pytest.raises(CaseForbidden):
        cases.complete_callback(
            session, case.id, outcome="reached", satisfaction=2, user=staff.agent, now=now
        )
    cases.complete_callback(session, case.id, outcome="reached", satisfaction=2, user=staff.callback, now=now)
    assert (case.status, case.satisfaction, case.follow_up, task.status) == (
        "callback_done",
        2,
        "dissatisfied_with_result",
        "done",
    )
    cases.close(session, case.id, user=staff.leader, now=now)
    assert case.status == "closed"


def test_a_consultation_closes_after_the_reply(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now, case_type="consultation", queue_name="consultation")
    advance(session, case, staff, now, "customer_replied")
    assert session.execute(select(CallbackTask)).first() is None
    cases.close(session, case.id, user=staff.agent, now=now)
    assert case.status == "closed"


# --- flags, escalation, follow-up ------------------------------------------------------------------


def test_repeat_complaints_within_the_window(session: Session, staff: Staff, now: datetime) -> None:
    first = register(session, staff, now - timedelta(days=29))
    repeat = register(session, staff, now)
    other_category = register(session, staff, now, category="service_attitude")
    other_caller = register(session, staff, now, contact_number="13700001111")
    assert (repeat.is_repeat, repeat.repeat_of_id) == (True, first.id)
    assert not first.is_repeat and not other_category.is_repeat and not other_caller.is_repeat
    later = register(session, staff, now + timedelta(days=31), category="service_attitude")
    assert not later.is_repeat  # 31 days after the last service-attitude complaint
    suggestion = register(session, staff, now, case_type="suggestion")
    assert not suggestion.is_repeat


def test_escalation_climbs_to_the_manager(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now)
    for level in ("team_leader", "supervisor", "manager"):
        cases.escalate(session, case.id, reason="客户情绪激动", user=staff.agent, now=now)
        assert case.escalation_level == level
    with pytest.raises(CaseForbidden):
        cases.escalate(session, case.id, reason="", user=staff.agent, now=now)


def test_major_cases_are_put_before_the_managers(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now, urgency="major")
    notice = session.execute(select(Notice)).scalar_one()
    assert (notice.user_id, notice.kind, notice.case_id) == (staff.manager.id, "major_case", case.id)


def test_follow_up_in_n_days_needs_its_date(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now)
    with pytest.raises(CaseError, match="date"):
        cases.set_follow_up(session, case.id, follow_up="resolve_in_n_days", user=staff.agent, now=now)
    cases.set_follow_up(
        session,
        case.id,
        follow_up="resolve_in_n_days",
        follow_up_date=date(2026, 11, 30),
        user=staff.agent,
        now=now,
    )
    assert (case.follow_up, case.follow_up_date) == ("resolve_in_n_days", date(2026, 11, 30))


def test_agents_see_their_own_and_their_queues_cases(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now)
    assert cases.can_view(staff.agent, case) and cases.can_view(staff.leader, case)
    assert not cases.can_view(staff.other_agent, case)
    assert not cases.can_view(staff.handler, case)  # not yet with after-sales
    advance(session, case, staff, now, "assigned")
    assert cases.can_view(staff.handler, case) and not cases.can_view(staff.other_head, case)


# --- the sweep -------------------------------------------------------------------------------------


def test_the_sweep_marks_overdue_cases_once(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now)
    on_time = register(session, staff, now)
    cases.record_first_reply(session, on_time.id, note="已致电", user=staff.agent, now=now)
    after_first_reply = now + timedelta(hours=25)
    result = cases.sweep(session, policy=POLICY, now=after_first_reply)
    assert result == cases.SweepResult(delayed=0, first_reply_overdue=1, warnings=0)
    late = case.resolution_due_at + timedelta(seconds=1)
    assert cases.sweep(session, policy=POLICY, now=late) == cases.SweepResult(
        delayed=2, first_reply_overdue=0
    )
    assert cases.sweep(session, policy=POLICY, now=late + timedelta(minutes=1)) == cases.SweepResult()
    assert case.delayed and on_time.delayed
    kinds = [event.kind for event in case.history]
    assert kinds.count("overdue") == 1 and kinds.count("first_reply_overdue") == 1


def test_a_promised_reply_warns_the_owner_once(session: Session, staff: Staff, now: datetime) -> None:
    case = register(session, staff, now)
    promised = now + timedelta(hours=2)
    cases.promise_reply(session, case.id, at=promised, user=staff.agent, now=now)
    task = session.execute(select(CallbackTask)).scalar_one()
    assert (task.kind, task.due_at, task.data) == ("promised_reply", promised, {"case_id": case.id})
    assert cases.sweep(session, policy=POLICY, now=promised - timedelta(minutes=31)).warnings == 0
    assert cases.sweep(session, policy=POLICY, now=promised - timedelta(minutes=30)).warnings == 1
    assert cases.sweep(session, policy=POLICY, now=promised - timedelta(minutes=5)).warnings == 0
    notice = session.execute(select(Notice)).scalar_one()
    assert (notice.user_id, notice.kind, notice.due_at) == (staff.agent.id, "promise_due_soon", promised)
    assert [n.id for n in cases.unread_notices(session, staff.agent.id)] == [notice.id]
    cases.mark_notice_read(session, notice.id, user_id=staff.agent.id, now=now)
    assert cases.unread_notices(session, staff.agent.id) == []


def test_the_category_taxonomy_comes_from_settings(
    session: Session, staff: Staff, now: datetime, tmp_path: Path
) -> None:
    toml = tmp_path / "settings.toml"
    toml.write_text(
        "[cases]\nordinary_days = 5\n"
        '[[cases.categories]]\ncode = "billing"\nname_zh = "计费"\nname_en = "Billing"\n'
    )
    custom = cases.CasePolicy.from_settings(load_settings(toml))
    assert custom.category_codes == ("billing",)
    case = cases.register_case(
        session, complaint(category="billing"), user=staff.agent, policy=custom, now=now
    )
    assert case.resolution_due_at == datetime(2026, 11, 30, 23, 59, 59, tzinfo=SHANGHAI)  # 5 working days
    with pytest.raises(CaseError, match="category"):
        cases.register_case(session, complaint(category="product"), user=staff.agent, policy=custom, now=now)


def test_two_registrations_racing_for_one_number(
    db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two transactions read the day's last number at the same moment; both still commit, with
    different numbers (PostgreSQL: the loser's INSERT waits for the winner, fails, and retries).
    SQLite has one writer at a time, so the race cannot happen there."""
    if db.dialect == "sqlite":
        pytest.skip("SQLite serialises writers")
    with db.transaction() as session:
        agent_id = person(session, "agent", "agent_complaint", now=now).id
    barrier = threading.Barrier(2, timeout=10)
    real, first_reads = cases._last_sequence, set()

    def together(db_session: Session, prefix: str) -> int:
        value = real(db_session, prefix)
        if threading.get_ident() not in first_reads:
            first_reads.add(threading.get_ident())
            barrier.wait()  # both have read 0 before either inserts
        return value

    monkeypatch.setattr(cases, "_last_sequence", together)
    numbers: list[str] = []
    errors: list[BaseException] = []

    def register_one() -> None:
        try:
            with db.transaction() as session:
                user = session.get(User, agent_id)
                assert user is not None
                numbers.append(
                    cases.register_case(session, complaint(), user=user, policy=POLICY, now=now).number
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(numbers) == ["TS-20261123-0001", "TS-20261123-0002"]
