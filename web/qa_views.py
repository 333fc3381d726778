"""QA pages' view models: plain data built inside the read session, formatted for the viewer.

Numbers are masked unless the viewer's roles need them (``presenters.FULL_NUMBER_ROLES``); QA staff
never see a caller's full number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import (
    AuditLog,
    Case,
    Notice,
    QAAssignment,
    QAEvaluation,
    QASample,
    QAScorecard,
    case_call,
)
from callcenter.services import qa_reviews, qa_scorecards
from callcenter.services.qa_assignment import qa_staff
from callcenter.services.qa_scorecards import Template
from web import labels
from web.paging import Page, mapped, paginate
from web.presenters import Display, call_detail, local_time

QA_NOTICE_KINDS = ("qa_rescore", "qa_dispute_lead")


@dataclass(frozen=True)
class QueueRow:
    assignment_id: int
    sample_id: int
    purpose: str
    assigned_on: str
    started: str
    agent: str
    queue: str
    talk: str
    reasons: list[str]
    done: bool


@dataclass(frozen=True)
class SampleRow:
    sample_id: int
    started: str
    agent: str
    queue: str
    reasons: list[str]
    evaluators: str
    score: str


@dataclass(frozen=True)
class CaseRow:
    number: str
    title: str
    status: str
    category: str


@dataclass(frozen=True)
class ResponseRow:
    kind: str
    text: str
    status: str
    at: str
    who: str


@dataclass(frozen=True)
class EvaluationRow:
    id: int
    purpose: str
    version: int
    evaluator: str
    scorecard: str
    total: float
    critical_failed: bool
    failed_items: list[str]
    section_scores: dict[str, Any]
    comments: str
    suggestions: str
    case_material: bool
    at: str
    is_current: bool
    responses: list[ResponseRow] = field(default_factory=list)


@dataclass(frozen=True)
class Workspace:
    sample_id: int
    recording_id: int
    recording_duration: str
    reasons: list[str]
    agent: str
    queue: str
    call: Any  # presenters.CallDetail
    cases: list[CaseRow]
    evaluations: list[EvaluationRow]
    spread: qa_reviews.Spread
    open_assignment: int | None
    open_purpose: str
    scorecard_id: int | None
    scorecard_title: str
    template: Template | None
    titles: dict[str, str]


def _queue_row(assignment: QAAssignment, display: Display) -> QueueRow:
    sample = assignment.sample
    call = sample.call
    return QueueRow(
        assignment_id=assignment.id,
        sample_id=sample.id,
        purpose=assignment.purpose,
        assigned_on=assignment.assigned_on.isoformat(),
        started=local_time(call.started_at, display.zone),
        agent=sample.agent.name if sample.agent else "",
        queue=sample.queue_name,
        talk=f"{(call.talk_s or 0) // 60}:{(call.talk_s or 0) % 60:02d}",
        reasons=list(sample.reasons),
        done=assignment.done_at is not None,
    )


def my_queue(session: Session, user_id: int, display: Display, *, size: int) -> Page[QueueRow]:
    """The user's assignments, open ones first, newest first (a page of them, with the total)."""
    query = (
        select(QAAssignment)
        .where(QAAssignment.user_id == user_id)
        .order_by(QAAssignment.done_at.is_not(None), QAAssignment.id.desc())
    )
    found = paginate(session, query, size=size)
    return mapped(found, [_queue_row(a, display) for a in found.items])


@dataclass(frozen=True)
class NoticeRow:
    id: int
    text: str
    sample_id: int | None
    created: str


def my_notices(session: Session, user_id: int, display: Display) -> list[NoticeRow]:
    """The user's unread QA notices (a dispute to re-score), newest first."""
    found = session.execute(
        select(Notice)
        .where(Notice.user_id == user_id, Notice.read_at.is_(None), Notice.kind.in_(QA_NOTICE_KINDS))
        .order_by(Notice.created_at.desc(), Notice.id.desc())
    ).scalars()
    return [
        NoticeRow(
            n.id,
            labels.label(labels.NOTICE_KINDS, n.kind),
            n.data.get("sample_id") if isinstance(n.data.get("sample_id"), int) else None,
            local_time(n.created_at, display.zone),
        )
        for n in found
    ]


def recent_samples(session: Session, display: Display, *, size: int) -> Page[SampleRow]:
    """Every sample, newest first (a page, under ``?samples=``)."""
    found = paginate(session, select(QASample).order_by(QASample.id.desc()), size=size, arg="samples")
    samples = found.items
    names = qa_reviews.user_names(session, {a.user_id for s in samples for a in s.assignments})
    rows = []
    for sample in samples:
        current = qa_reviews.current_evaluation(session, sample.id)
        rows.append(
            SampleRow(
                sample_id=sample.id,
                started=local_time(sample.call.started_at, display.zone),
                agent=sample.agent.name if sample.agent else "",
                queue=sample.queue_name,
                reasons=list(sample.reasons),
                evaluators=", ".join(names.get(a.user_id, "?") for a in sample.assignments),
                score=f"{current.total:.2f}" if current is not None else "",
            )
        )
    return mapped(found, rows)


def linked_cases(session: Session, call_id: int) -> list[CaseRow]:
    cases = session.execute(
        select(Case).join(case_call, case_call.c.case_id == Case.id).where(case_call.c.call_id == call_id)
    ).scalars()
    return [CaseRow(c.number, c.title, c.status, c.category) for c in cases]


def evaluation_rows(session: Session, sample: QASample, display: Display) -> list[EvaluationRow]:
    evaluations = list(sample.evaluations)
    people = {e.evaluator_id for e in evaluations if e.evaluator_id} | {
        r.user_id for e in evaluations for r in e.responses if r.user_id
    }
    names = qa_reviews.user_names(session, people)
    current = qa_reviews.current_evaluation(session, sample.id)
    return [
        EvaluationRow(
            id=e.id,
            purpose=e.purpose,
            version=e.version,
            evaluator=names.get(e.evaluator_id or 0, ""),
            scorecard=f"{e.scorecard.name} v{e.scorecard.version}",
            total=e.total,
            critical_failed=e.critical_failed,
            failed_items=list(e.failed_items),
            section_scores=dict(e.section_scores),
            comments=e.comments,
            suggestions=e.suggestions,
            case_material=e.case_material,
            at=local_time(e.created_at, display.zone),
            is_current=current is not None and current.id == e.id,
            responses=[
                ResponseRow(
                    r.kind,
                    r.text,
                    r.status or "",
                    local_time(r.at, display.zone),
                    names.get(r.user_id or 0, ""),
                )
                for r in e.responses
            ],
        )
        for e in evaluations
    ]


def _titles(template: Template | None, cards: list[QAScorecard]) -> dict[str, str]:
    titles: dict[str, str] = {}
    for card in cards:
        for section in qa_scorecards.parse_template(card.definition).sections:
            titles[section.key] = section.title
            titles.update({item.key: item.title for item in section.items})
    if template is not None:
        for section in template.sections:
            titles[section.key] = section.title
            titles.update({item.key: item.title for item in section.items})
    return titles


def workspace(session: Session, sample: QASample, user_id: int, display: Display) -> Workspace:
    open_assignment = next(
        (a for a in sample.assignments if a.user_id == user_id and a.done_at is None), None
    )
    card = qa_scorecards.current(session)
    template = qa_scorecards.parse_template(card.definition) if card is not None else None
    used = [e.scorecard for e in sample.evaluations]
    recording = sample.recording
    return Workspace(
        sample_id=sample.id,
        recording_id=recording.id,
        recording_duration=f"{recording.duration_s or 0:.0f} s",
        reasons=list(sample.reasons),
        agent=sample.agent.name if sample.agent else "",
        queue=sample.queue_name,
        call=call_detail(sample.call, display),
        cases=linked_cases(session, sample.call_id),
        evaluations=evaluation_rows(session, sample, display),
        spread=qa_reviews.spread(session, sample.id),
        open_assignment=open_assignment.id if open_assignment else None,
        open_purpose=open_assignment.purpose if open_assignment else "",
        scorecard_id=card.id if card else None,
        scorecard_title=f"{card.title} (v{card.version})" if card else "",
        template=template,
        titles=_titles(template, used),
    )


@dataclass(frozen=True)
class MyEvaluation:
    id: int
    sample_id: int
    recording_id: int
    started: str
    queue: str
    total: float
    critical_failed: bool
    failed_items: list[str]
    comments: str
    suggestions: str
    at: str
    acknowledged: bool
    disputes: list[ResponseRow]
    can_dispute: bool


def my_evaluations(
    session: Session, agent_id: int, display: Display, *, now: datetime, window: Any, max_disputes: int
) -> list[MyEvaluation]:
    samples = session.execute(
        select(QASample).where(QASample.agent_id == agent_id).order_by(QASample.id.desc()).limit(100)
    ).scalars()
    rows = []
    for sample in samples:
        current = qa_reviews.current_evaluation(session, sample.id)
        if current is None:
            continue
        acknowledged = any(r.kind == "acknowledge" for r in current.responses)
        open_dispute = any(r.kind == "dispute" and r.status == "open" for r in current.responses)
        disputes = [
            ResponseRow(r.kind, r.text, r.status or "", local_time(r.at, display.zone), "")
            for e in sample.evaluations
            for r in e.responses
            if r.kind == "dispute"
        ]
        rows.append(
            MyEvaluation(
                id=current.id,
                sample_id=sample.id,
                recording_id=sample.recording_id,
                started=local_time(sample.call.started_at, display.zone),
                queue=sample.queue_name,
                total=current.total,
                critical_failed=current.critical_failed,
                failed_items=list(current.failed_items),
                comments=current.comments,
                suggestions=current.suggestions,
                at=local_time(current.created_at, display.zone),
                acknowledged=acknowledged,
                disputes=disputes,
                can_dispute=not acknowledged
                and not open_dispute
                and now - current.created_at <= window
                and len(disputes) < max_disputes,
            )
        )
    return rows


@dataclass(frozen=True)
class AuditRow:
    at: str
    username: str
    action: str
    object_type: str
    object_id: str
    remote_addr: str


def audit_rows(session: Session, display: Display, *, size: int) -> Page[AuditRow]:
    """Listenings and downloads, newest first (a page, with the total)."""
    query = (
        select(AuditLog)
        .where(AuditLog.action.in_(("recording.play", "recording.download")))
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
    )
    found = paginate(session, query, size=size)
    return mapped(
        found,
        [
            AuditRow(
                local_time(r.at, display.zone),
                r.username,
                r.action,
                r.object_type,
                r.object_id,
                r.remote_addr,
            )
            for r in found.items
        ],
    )


def scorecard_versions(session: Session) -> list[QAScorecard]:
    return list(
        session.execute(select(QAScorecard).order_by(QAScorecard.name, QAScorecard.version.desc())).scalars()
    )


def calibration_candidates(session: Session) -> list[tuple[int, str]]:
    staff = qa_staff(session)
    names = qa_reviews.user_names(session, {e.user_id for e in staff})
    return [(e.user_id, names.get(e.user_id, "")) for e in staff]


def evaluation_for(session: Session, evaluation_id: int) -> QAEvaluation | None:
    return session.get(QAEvaluation, evaluation_id)
