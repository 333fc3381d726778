"""Work on every desk, made with the services the web uses: cases in several states (registered by the
agents who took the calls, steered by the team leader and the after-sales head), an active campaign
allocated to the callback specialist, the QA draw over the demo calls (so the QA evaluator has a
queue) and the team leader's handover of the last shift.

Each stage is skipped when its data is there already (a case linked to its demo call, the campaign
by name, a sample of a demo call, a handover by the team leader), so seeding twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.models import Agent, Call, Campaign, Case, QASample, ShiftHandover, User
from callcenter.models.case import case_call
from callcenter.services import campaigns, cases, presence, shifts, users
from callcenter.services.demo.calls import CALLS, PREFIX, start_of
from callcenter.services.qa_jobs import draw_period
from callcenter.settings import Settings

CAMPAIGN_NAME = "老客户满意度回访(演示)"
QA_SEED = 20260101
STEP = timedelta(minutes=40)  # between two operations on a demo case


@dataclass(frozen=True)
class CaseSpec:
    call: int  # index of the demo call the case is registered from
    agent: str  # who registers it
    case_type: str
    category: str
    title: str
    content: str
    until: str  # the state the demo leaves it in


CASES: tuple[CaseSpec, ...] = (
    CaseSpec(
        1,
        "zhangwei",
        "consultation",
        "product",
        "咨询宽带套餐资费",
        "VIP 客户询问各档宽带套餐的价格和速率。",
        "registered",
    ),
    CaseSpec(
        2,
        "lina",
        "complaint",
        "after_sales",
        "宽带断网两天无人维修",
        "客户家中宽带中断两天,报修后无人上门。",
        "assigned",
    ),
    CaseSpec(
        6,
        "lina",
        "complaint",
        "service_attitude",
        "装维人员上门迟到",
        "约定上午上门,下午才到,态度敷衍。",
        "in_progress",
    ),
    CaseSpec(
        5,
        "wangfang",
        "complaint",
        "service_quality",
        "网速远低于套餐标称",
        "套餐三百兆,实测不到五十兆。",
        "solution_pending_approval",
    ),
    CaseSpec(
        9,
        "lina",
        "complaint",
        "after_sales",
        "更换光猫后仍频繁掉线",
        "上周更换光猫,每天仍掉线多次。",
        "customer_replied",
    ),
    CaseSpec(
        4,
        "zhangwei",
        "consultation",
        "other",
        "企业专线开通流程",
        "企业客户咨询专线开通需要的材料和周期。",
        "closed",
    ),
)
# The operations in order; a case stops after the one that brings it to its ``until`` state.
CHAIN = (
    "classified",
    "assigned",
    "in_progress",
    "solution_pending_approval",
    "solution_approved",
    "customer_replied",
    "closed",
)


@dataclass
class Desks:
    cases: int = 0
    campaign_tasks: int = 0
    qa_sampled: int = 0
    handover: bool = False


def seed_cases(settings: Settings, db: Database, now: datetime) -> int:
    """The demo cases not made yet; returns how many were made."""
    made = 0
    for spec in CASES:
        with db.transaction() as session:
            call = _demo_call(session, spec.call)
            if call is None or _has_case(session, call.id):
                continue
            _walk(session, settings, spec, call, now)
            made += 1
    return made


def _demo_call(session: Session, index: int) -> Call | None:
    return session.execute(
        select(Call).where(Call.external_id == f"{PREFIX}{index:02d}")
    ).scalar_one_or_none()


def _has_case(session: Session, call_id: int) -> bool:
    return (
        session.execute(select(case_call.c.case_id).where(case_call.c.call_id == call_id)).first() is not None
    )


def _user(session: Session, username: str) -> User:
    user = users.find_user(session, username)
    if user is None:
        raise LookupError(f"demo user {username} is missing: seed the demo people first")
    return user


def _walk(session: Session, settings: Settings, spec: CaseSpec, call: Call, now: datetime) -> Case:
    """Register the case from its call, then take it through the chain up to ``spec.until``."""
    policy = cases.CasePolicy.from_settings(settings)
    departments = [department.code for department in settings.departments]
    department = "after_sales" if "after_sales" in departments else departments[0]
    category = spec.category if spec.category in policy.category_codes else policy.category_codes[0]
    agent, leader = _user(session, spec.agent), _user(session, "sunli")
    head = _user(session, "zhoujie")
    at = (call.ended_at or call.started_at) + timedelta(minutes=3)
    new = cases.NewCase(
        case_type=spec.case_type,
        title=spec.title,
        content=spec.content,
        category=category,
        contact_name=call.caller_name or "",
        contact_number=call.from_e164 or call.from_raw,
        agent_id=call.agent_id,
        queue_name=call.queue_name,
        call_ids=[call.id],
    )
    case = cases.register_case(session, new, user=agent, policy=policy, now=min(at, now))
    steps: dict[str, Callable[[datetime], Case]] = {
        "classified": lambda t: cases.classify(
            session,
            case.id,
            category=category,
            complexity="ordinary",
            urgency="normal",
            user=leader,
            policy=policy,
            now=t,
        ),
        "assigned": lambda t: cases.assign(
            session, case.id, department=department, departments=departments, user=leader, now=t
        ),
        "in_progress": lambda t: cases.sign_off(session, case.id, user=head, now=t),
        "solution_pending_approval": lambda t: cases.submit_solution(
            session,
            case.id,
            solution="已安排工程师上门检测并更换设备。",
            remedy="extra_service",
            user=head,
            now=t,
        ),
        "solution_approved": lambda t: _approve(session, case.id, head, t),
        "customer_replied": lambda t: cases.send_reply(
            session, case.id, result="已电话告知客户处理结果。", user=head, policy=policy, now=t
        ),
        "closed": lambda t: cases.close(session, case.id, user=leader, now=t, note="客户已确认"),
    }
    if spec.until == "registered":
        return case
    for state in CHAIN[: CHAIN.index(spec.until) + 1]:
        at += STEP
        case = steps[state](min(at, now))
    return case


def _approve(session: Session, case_id: int, head: User, at: datetime) -> Case:
    cases.decide_solution(session, case_id, approve=True, note="同意", user=head, now=at)
    return cases.audit_reply(session, case_id, passed=True, note="答复内容已核对", user=head, now=at)


def seed_campaign(settings: Settings, db: Database, now: datetime) -> int:
    """An active preview campaign over the demo customers, every task allocated to the callback
    specialist; returns the number of tasks made (0 when the campaign exists)."""
    with db.transaction() as session:
        if session.execute(select(Campaign.id).where(Campaign.name == CAMPAIGN_NAME)).first() is not None:
            return 0
        specialist = _user(session, "chenjing")
        agent_id = session.execute(select(Agent.id).where(Agent.user_id == specialist.id)).scalar_one()
        chosen = campaigns.select_callers(session, campaigns.CallerFilter(tiers=("vip", "key", "normal")))
        spec = campaigns.CampaignSpec(
            name=CAMPAIGN_NAME,
            kind="relationship",
            mode="preview",
            timezone=settings.organisation.timezone,
            due_from=now,
            agent_ids=(agent_id,),
            created_by_id=_user(session, "sunli").id,
        )
        campaign = campaigns.create_campaign(session, spec, now, callers=chosen, source={"demo": True})
        campaigns.set_status(session, campaign.id, "active", now)
        return campaigns.progress(session, campaign.id).total


def seed_qa(settings: Settings, db: Database, now: datetime) -> int:
    """The QA draw over the demo days (the service the daily job runs), handed to the QA staff."""
    with db.read() as session:
        drawn = session.execute(
            select(QASample.id)
            .join(Call, Call.id == QASample.call_id)
            .where(Call.external_id.startswith(PREFIX))
        ).first()
    if drawn is not None:
        return 0
    days = sorted({start_of(call, now, settings).date() for call in CALLS})
    outcome = draw_period(
        settings, db, now, start=days[0], end=days[-1] + timedelta(days=1), seed=QA_SEED, trigger="cli"
    )
    return outcome.sampled


def seed_handover(settings: Settings, db: Database, now: datetime) -> bool:
    """The team leader's handover of the last shift that ended, to the first agent."""
    window = presence.previous_window(now, settings.console, settings.zone)
    with db.transaction() as session:
        leader = _user(session, "sunli")
        done = session.execute(select(ShiftHandover.id).where(ShiftHandover.on_duty_id == leader.id)).first()
        if window is None or done is not None:
            return False
        shifts.submit_handover(
            session,
            window,
            team="",
            on_duty_id=leader.id,
            receiving_id=_user(session, "zhangwei").id,
            note="断网投诉两单待售后处理;陈静的回访活动已启动,请跟进。",
            now=now,
        )
    return True


def seed_desks(settings: Settings, db: Database, now: datetime) -> Desks:
    """Cases, the campaign, the QA draw and the handover, in that order (the handover lists the
    open cases and callbacks)."""
    return Desks(
        cases=seed_cases(settings, db, now),
        campaign_tasks=seed_campaign(settings, db, now),
        qa_sampled=seed_qa(settings, db, now),
        handover=seed_handover(settings, db, now),
    )
