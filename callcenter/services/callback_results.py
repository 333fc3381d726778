"""The callback script's answers (D45, G68), what they update (D46), and the campaign summary (D47–D48).

The script: 1 greeting and identity check ("no" stops the script: nothing about the case is
discussed or stored), 2 the problem, 3 the solution, 4 satisfaction (yes/no and 1–5) and
suggestions, 5 closing; repair-order callbacks add service attitude, product quality and whether
the charges were reasonable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import (
    Call,
    CallbackAttempt,
    CallbackResult,
    CallbackTask,
    Caller,
    CallEvent,
    CampaignMember,
    Case,
    CaseEvent,
)
from callcenter.services import cases
from callcenter.services.admin import Actor, audit

if TYPE_CHECKING:
    from callcenter.models import User

NOT_THE_CUSTOMER = "not_the_customer"
REACHED = "reached"
OTHER_PHONE = "other_phone"  # the result's source when the agent called from another phone
OTHER_PHONE_ACTION = "callback.other_phone"
NOT_ANSWERED = "no answered call on record: dial first, or say why you called from another phone"


class ScriptError(ValueError):
    """Answers the script cannot accept (the message says which)."""


@dataclass(frozen=True)
class Answers:
    identity_confirmed: bool
    problem: str = ""
    solution: str = ""
    satisfied: bool | None = None
    satisfaction: int | None = None  # 1–5
    suggestion: str = ""
    attitude: int | None = None  # repair orders, 1–5
    quality: int | None = None
    charges_reasonable: bool | None = None
    duration_s: int | None = None

    def check(self) -> None:
        for name in ("satisfaction", "attitude", "quality"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 5:
                raise ScriptError(f"{name} must be 1–5")


def complete_case_callback(
    session: Session,
    case_id: int,
    *,
    outcome: str,
    satisfaction: int | None,
    user: User | None,
    now: datetime,
    case_policy: cases.CasePolicy | None = None,
) -> None:
    """Tell the linked case that its callback happened.

    A case waiting for its callback (``customer_replied``) with a satisfaction score goes through the
    cases service: outcome and score on the case, its complaint-callback task done, the move to
    ``callback_done`` (``cases.complete_callback``; its role check applies, and a refusal reaches the
    screen as a ``ScriptError``). Any other callback on a case (no score, or a case in another state)
    is written to the case's history as a ``callback`` event, with the score if there is one.
    """
    case = session.get(Case, case_id)
    if case is None:
        return
    if case.status == "customer_replied" and satisfaction is not None and user is not None:
        try:
            cases.complete_callback(
                session,
                case_id,
                outcome=outcome,
                satisfaction=satisfaction,
                user=user,
                now=now,
                policy=case_policy,
            )
        except cases.CaseError as exc:
            raise ScriptError(str(exc)) from exc
        return
    session.add(
        CaseEvent(
            case_id=case.id,
            kind="callback",
            from_status=case.status,
            to_status=case.status,
            user_id=user.id if user is not None else None,
            reason=outcome,
            data={"satisfaction": satisfaction},
            at=now,
        )
    )
    if satisfaction is not None:
        case.satisfaction = satisfaction
    case.updated_at = now


def record_answers(
    session: Session,
    task_id: int,
    answers: Answers,
    *,
    user: User | None,
    now: datetime,
    case_policy: cases.CasePolicy | None = None,
    other_phone_reason: str = "",
    remote_addr: str = "",
) -> CallbackResult:
    """Store the script's answers (once per task), close the task, update the caller and the case
    (``case_policy``: the organisation's case rules, for the dissatisfied threshold).

    Somebody must have answered: the task needs an answered dial attempt (``reached``, not abandoned
    before an agent), or ``other_phone_reason``: the agent called from another phone and says why
    (audited as ``callback.other_phone``; the result's source is ``other_phone``)."""
    answers.check()
    task = session.execute(
        select(CallbackTask).where(CallbackTask.id == task_id).with_for_update()
    ).scalar_one_or_none()
    if task is None:
        raise ScriptError("no such callback task")
    if session.execute(select(CallbackResult.id).where(CallbackResult.task_id == task_id)).first():
        raise ScriptError("this callback's result is already recorded")
    source = "script"
    if not answered(session, task_id):
        reason = other_phone_reason.strip()
        if not reason:
            raise ScriptError(NOT_ANSWERED)
        _audit_other_phone(session, task, reason, user, remote_addr, now)
        source = OTHER_PHONE
    campaign_id = session.execute(
        select(CampaignMember.campaign_id).where(CampaignMember.task_id == task_id)
    ).scalar_one_or_none()
    result = CallbackResult(
        task_id=task.id,
        campaign_id=campaign_id,
        user_id=user.id if user is not None else None,
        identity_confirmed=answers.identity_confirmed,
        duration_s=answers.duration_s,
        source=source,
        recorded_at=now,
    )
    if not answers.identity_confirmed:
        result.outcome = NOT_THE_CUSTOMER  # G68: the script stops; nothing about the case is kept
    else:
        repair = task.kind == "repair_order"
        result.outcome = REACHED
        result.problem, result.solution = answers.problem[:4000], answers.solution[:4000]
        result.satisfied, result.satisfaction = answers.satisfied, answers.satisfaction
        result.suggestion = answers.suggestion[:4000]
        if repair:
            result.attitude, result.quality = answers.attitude, answers.quality
            result.charges_reasonable = answers.charges_reasonable
    session.add(result)
    task.status, task.updated_at = "done", now
    task.data = {**task.data, "script_outcome": result.outcome}
    _update_caller(session, task, result, now)
    case_id = task.data.get("case_id")
    if case_id is not None and answers.identity_confirmed:
        complete_case_callback(
            session,
            int(case_id),
            outcome=f"{result.outcome}: {result.suggestion}" if result.suggestion else result.outcome,
            satisfaction=result.satisfaction,
            user=user,
            now=now,
            case_policy=case_policy,
        )
    return result


def answered(session: Session, task_id: int) -> bool:
    """Whether a dial attempt of the task was answered (``reached``) and not abandoned before an agent."""
    query = select(CallbackAttempt.id).where(
        CallbackAttempt.task_id == task_id,
        CallbackAttempt.result == REACHED,
        CallbackAttempt.abandoned.is_(False),
    )
    return session.execute(query.limit(1)).first() is not None


def _audit_other_phone(
    session: Session, task: CallbackTask, reason: str, user: User | None, remote_addr: str, now: datetime
) -> None:
    actor = Actor(None, "", remote_addr) if user is None else Actor(user.id, user.username, remote_addr)
    audit(session, actor, OTHER_PHONE_ACTION, "callback_task", task.id, now=now, reason=reason[:1000])
    task.data = {**task.data, "other_phone": True}


def _update_caller(session: Session, task: CallbackTask, result: CallbackResult, now: datetime) -> None:
    caller = session.get(Caller, task.caller_id) if task.caller_id is not None else None
    if caller is None:
        return
    day = now.date().isoformat()
    if result.outcome == NOT_THE_CUSTOMER:
        line = f"[{day} callback] not the customer"
    else:
        score = f"{result.satisfaction}/5" if result.satisfaction is not None else "-"
        satisfied = {True: "satisfied", False: "dissatisfied", None: "no answer"}[result.satisfied]
        line = f"[{day} callback] {satisfied}, {score}" + (
            f"; {result.suggestion}" if result.suggestion else ""
        )
    caller.notes = (caller.notes + "\n" if caller.notes else "") + line[:500]
    caller.updated_at = now


def caller_history(session: Session, caller_id: int) -> list[CallbackResult]:
    """Callback results of one customer, newest first (last contact, satisfaction history)."""
    query = (
        select(CallbackResult)
        .join(CallbackTask, CallbackTask.id == CallbackResult.task_id)
        .where(CallbackTask.caller_id == caller_id)
        .order_by(CallbackResult.recorded_at.desc())
    )
    return list(session.execute(query).scalars())


@dataclass
class Summary:
    """回访总结报告: what a campaign's callbacks found."""

    tasks: int = 0
    results: Counter[str] = field(default_factory=Counter)  # per task: its last attempt's result / outcome
    satisfaction: Counter[int] = field(default_factory=Counter)
    satisfied: int = 0
    dissatisfied: list[tuple[int, str, str]] = field(default_factory=list)  # task id, number, suggestion
    suggestions: list[str] = field(default_factory=list)
    long_calls: list[tuple[int, int]] = field(default_factory=list)  # task id, seconds

    @property
    def satisfaction_rate(self) -> float | None:
        answered = sum(self.satisfaction.values())
        return None if not answered else self.satisfied / answered


def summary(session: Session, campaign_id: int, *, long_call_s: int) -> Summary:
    report = Summary()
    tasks = session.execute(
        select(CallbackTask)
        .join(CampaignMember, CampaignMember.task_id == CallbackTask.id)
        .where(CampaignMember.campaign_id == campaign_id)
        .order_by(CallbackTask.id)
    ).scalars()
    results = {
        row.task_id: row
        for row in session.execute(
            select(CallbackResult).where(CallbackResult.campaign_id == campaign_id)
        ).scalars()
    }
    talk = _talk_seconds(session, campaign_id)
    for task in tasks:
        report.tasks += 1
        result = results.get(task.id)
        outcome = result.outcome if result is not None else str(task.data.get("last_result") or task.status)
        report.results[outcome] += 1
        if result is None:
            continue
        if result.satisfaction is not None:
            report.satisfaction[result.satisfaction] += 1
            report.satisfied += 1 if (result.satisfied or result.satisfaction >= 4) else 0
        if result.suggestion:
            report.suggestions.append(result.suggestion)
        if result.satisfied is False or (result.satisfaction is not None and result.satisfaction <= 2):
            report.dissatisfied.append((task.id, task.number_e164 or task.number_raw, result.suggestion))
        seconds = result.duration_s if result.duration_s is not None else talk.get(task.id)
        if seconds is not None and seconds > long_call_s:
            report.long_calls.append((task.id, seconds))
    return report


def _talk_seconds(session: Session, campaign_id: int) -> dict[int, int]:
    """Talk time of reached attempts, from the outbound call's record."""
    rows = session.execute(
        select(CallbackAttempt.task_id, Call.talk_s)
        .join(Call, Call.external_id == CallbackAttempt.external_id)
        .where(
            CallbackAttempt.campaign_id == campaign_id,
            CallbackAttempt.result == "reached",
            Call.talk_s.is_not(None),
        )
    ).tuples()
    return {task_id: int(seconds) for task_id, seconds in rows if seconds is not None}


SURVEY_MENU = "survey_menu"


def record_survey_answers(session: Session, now: datetime, *, limit: int = 500) -> int:
    """Automated surveys: the key the callee pressed at the outbound flow's ``survey_menu`` ("press
    1–5") becomes the task's result. Idempotent (one result per task); returns how many were added."""
    answered = select(CallbackResult.task_id)
    rows = session.execute(
        select(CallbackAttempt, CallbackTask)
        .join(CallbackTask, CallbackTask.id == CallbackAttempt.task_id)
        .where(
            CallbackTask.kind == "survey",
            CallbackAttempt.result == "reached",
            CallbackAttempt.external_id.is_not(None),
            CallbackAttempt.task_id.not_in(answered),
        )
        .limit(limit)
    ).tuples()
    added = 0
    for attempt, task in rows:
        digits = session.execute(
            select(CallEvent.data)
            .join(Call, Call.id == CallEvent.call_id)
            .where(
                Call.channel == attempt.channel,
                Call.external_id == attempt.external_id,
                CallEvent.kind == "ivr.input",
                CallEvent.node == SURVEY_MENU,
            )
            .order_by(CallEvent.at.desc())
        ).scalars()
        score = next(
            (int(d["digits"]) for d in digits if str(d.get("digits", "")) in "12345" and d.get("digits")),
            None,
        )
        if score is None:
            continue
        session.add(
            CallbackResult(
                task_id=task.id,
                campaign_id=attempt.campaign_id,
                outcome=REACHED,
                identity_confirmed=False,  # a keypad survey cannot check who answered
                satisfied=score >= 4,
                satisfaction=score,
                source="ivr_survey",
                recorded_at=now,
            )
        )
        added += 1
    return added
