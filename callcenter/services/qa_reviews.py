"""Scoring a sample, the agent's acknowledgement or dispute, re-scores, calibration, access, audit.

Evaluations are inserted, never updated: a re-score (after a dispute) is a new evaluation with the
next ``version`` that ``supersedes`` the one disputed. Calibration evaluations (several evaluators on
one sample) are kept apart from the sample's score; their spread is what calibration shows.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.exceptions import CallcenterError
from callcenter.models import (
    Agent,
    AuditLog,
    Notice,
    QAAssignment,
    QAEvaluation,
    QAResponse,
    QASample,
    QAScorecard,
    Recording,
    User,
)
from callcenter.services import qa_scorecards
from callcenter.services.qa_assignment import assign, qa_staff

# Roles that may play any recording (REQUIREMENTS B16); QA plays what it is assigned, an agent
# the calls they handled. Not ``admin``: administering accounts is no licence to hear customers.
ANY_RECORDING_ROLES = ("supervisor", "team_leader", "manager")
# The margin between a listening's issue time (whole seconds) and the audit row, for clock skew
# between web processes.
LISTENING_SKEW = timedelta(minutes=1)
SCORED_PURPOSES = ("review", "rescore")


# Who may take a dispute as the QA lead: those the scoring page lets score an assignment.
LEAD_ROLES = ("qa", "supervisor", "team_leader", "manager")
NO_RESCORER = "no evaluator may re-score this call and no QA lead is configured; ask your team leader"


class ReviewError(CallcenterError):
    """A QA action refused by the rules (the message says which)."""


@dataclass(frozen=True)
class Dispute:
    response: QAResponse
    rescorer_id: int  # the user who got the re-score
    to_lead: bool  # no other evaluator could: it went to the QA lead


@dataclass(frozen=True)
class Viewer:
    user_id: int
    username: str
    roles: frozenset[str]


# --- access and audit -----------------------------------------------------------------------------


def agent_of(session: Session, user_id: int) -> int | None:
    return session.execute(select(Agent.id).where(Agent.user_id == user_id)).scalar_one_or_none()


def assigned_to(session: Session, user_id: int, recording_id: int) -> bool:
    return (
        session.execute(
            select(QAAssignment.id)
            .join(QASample, QASample.id == QAAssignment.sample_id)
            .where(QAAssignment.user_id == user_id, QASample.recording_id == recording_id)
            .limit(1)
        ).first()
        is not None
    )


def can_play(session: Session, viewer: Viewer, recording: Recording) -> bool:
    """Leaders play any recording; QA staff the ones assigned to them; an agent their own calls."""
    if viewer.roles & set(ANY_RECORDING_ROLES):
        return True
    if "qa" in viewer.roles and assigned_to(session, viewer.user_id, recording.id):
        return True
    agent_id = agent_of(session, viewer.user_id)
    return agent_id is not None and recording.call.agent_id == agent_id


def audit(
    session: Session,
    viewer: Viewer,
    action: str,
    object_type: str,
    object_id: int,
    *,
    now: datetime,
    remote_addr: str = "",
    data: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            at=now,
            user_id=viewer.user_id,
            username=viewer.username,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            remote_addr=remote_addr[:64],
            data=dict(data or {}),
        )
    )


@dataclass(frozen=True)
class Listening:
    """One opening of a player: its random key and when it was issued (the playback token's)."""

    key: str
    issued_at: datetime


def audit_listening(
    session: Session,
    viewer: Viewer,
    recording: Recording,
    listening: Listening,
    *,
    now: datetime,
    remote_addr: str,
) -> bool:
    """Write ``recording.play`` for the first audio request of ``listening``; later requests of the
    same listening (Range requests of the player: seeks, re-buffering, a replay) write nothing.

    The recording's row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite writes one at a time),
    so two requests racing at the start of a listening write one row."""
    session.execute(select(Recording.id).where(Recording.id == recording.id).with_for_update())
    seen = session.execute(
        select(AuditLog.id)
        .where(
            AuditLog.object_type == "recording",
            AuditLog.object_id == str(recording.id),
            AuditLog.action == "recording.play",
            AuditLog.user_id == viewer.user_id,
            AuditLog.at >= listening.issued_at - LISTENING_SKEW,
            AuditLog.data["listening"].as_string() == listening.key,
        )
        .limit(1)
    ).first()
    if seen is not None:
        return False
    audit(
        session,
        viewer,
        "recording.play",
        "recording",
        recording.id,
        now=now,
        remote_addr=remote_addr,
        data={"listening": listening.key},
    )
    return True


# --- scoring --------------------------------------------------------------------------------------


def open_assignment(session: Session, assignment_id: int, viewer: Viewer) -> QAAssignment:
    assignment = session.get(QAAssignment, assignment_id)
    if assignment is None or assignment.user_id != viewer.user_id:
        raise ReviewError("this sample is not assigned to you")
    if assignment.done_at is not None:
        raise ReviewError("this assignment is scored already; a change is a re-score")
    return assignment


def _superseded(session: Session, sample_id: int) -> QAEvaluation | None:
    return session.execute(
        select(QAEvaluation)
        .where(QAEvaluation.sample_id == sample_id, QAEvaluation.purpose.in_(SCORED_PURPOSES))
        .order_by(QAEvaluation.version.desc(), QAEvaluation.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def submit(
    session: Session,
    assignment_id: int,
    viewer: Viewer,
    *,
    scorecard_id: int,
    answers: Mapping[str, object],
    comments: str,
    suggestions: str,
    case_material: bool,
    now: datetime,
) -> QAEvaluation:
    """Score an assignment with one scorecard version; the assignment is done afterwards."""
    assignment = open_assignment(session, assignment_id, viewer)
    card = session.get(QAScorecard, scorecard_id)
    if card is None:
        raise ReviewError("unknown scorecard")
    result = qa_scorecards.score(qa_scorecards.parse_template(card.definition), answers)
    previous = _superseded(session, assignment.sample_id) if assignment.purpose == "rescore" else None
    if assignment.purpose == "review" and _superseded(session, assignment.sample_id) is not None:
        raise ReviewError("this sample has a score already")
    evaluation = QAEvaluation(
        sample_id=assignment.sample_id,
        assignment_id=assignment.id,
        scorecard_id=card.id,
        evaluator_id=viewer.user_id,
        purpose=assignment.purpose,
        version=(previous.version + 1) if previous is not None else 1,
        supersedes_id=previous.id if previous is not None else None,
        answers=dict(result.answers),
        section_scores=dict(result.section_scores),
        total=result.total,
        critical_failed=result.critical_failed,
        failed_items=list(result.failed_items),
        comments=comments.strip(),
        suggestions=suggestions.strip(),
        case_material=case_material,
        created_at=now,
    )
    session.add(evaluation)
    assignment.done_at = now
    session.flush()
    if previous is not None:
        _close_disputes(session, previous.id, evaluation.id)
    return evaluation


def _close_disputes(session: Session, evaluation_id: int, rescored_by: int) -> None:
    for dispute in session.execute(
        select(QAResponse).where(
            QAResponse.evaluation_id == evaluation_id,
            QAResponse.kind == "dispute",
            QAResponse.status == "open",
        )
    ).scalars():
        dispute.status, dispute.resolved_by_id = "rescored", rescored_by


def current_evaluation(session: Session, sample_id: int) -> QAEvaluation | None:
    """The sample's score: its latest review or re-score."""
    return _superseded(session, sample_id)


# --- the agent's answer ---------------------------------------------------------------------------


def _own_evaluation(session: Session, evaluation_id: int, viewer: Viewer) -> QAEvaluation:
    evaluation = session.get(QAEvaluation, evaluation_id)
    agent_id = agent_of(session, viewer.user_id)
    if evaluation is None or agent_id is None or evaluation.sample.agent_id != agent_id:
        raise ReviewError("this evaluation is not about your calls")
    if evaluation.purpose not in SCORED_PURPOSES:
        raise ReviewError("calibration scores are not answered")
    current = current_evaluation(session, evaluation.sample_id)
    if current is None or current.id != evaluation.id:
        raise ReviewError("this evaluation has been re-scored; answer the new one")
    return evaluation


def acknowledge(session: Session, evaluation_id: int, viewer: Viewer, *, now: datetime) -> QAResponse:
    evaluation = _own_evaluation(session, evaluation_id, viewer)
    if any(r.kind == "acknowledge" for r in evaluation.responses):
        raise ReviewError("acknowledged already")
    if any(r.kind == "dispute" and r.status == "open" for r in evaluation.responses):
        raise ReviewError("a dispute is open; wait for the re-score")
    response = QAResponse(evaluation_id=evaluation.id, kind="acknowledge", user_id=viewer.user_id, at=now)
    session.add(response)
    session.flush()
    return response


def disputes_used(session: Session, sample_id: int) -> int:
    return session.execute(
        select(func.count())
        .select_from(QAResponse)
        .join(QAEvaluation, QAEvaluation.id == QAResponse.evaluation_id)
        .where(QAEvaluation.sample_id == sample_id, QAResponse.kind == "dispute")
    ).scalar_one()


def dispute(
    session: Session,
    evaluation_id: int,
    viewer: Viewer,
    *,
    reason: str,
    now: datetime,
    zone: ZoneInfo,
    window: timedelta,
    max_disputes: int,
    lead: str = "",
) -> Dispute:
    """Dispute within ``window`` of the score, at most ``max_disputes`` times per sample's
    evaluation chain. The re-score goes to another evaluator (the least loaded one today) or, when
    none may, to the QA lead (username ``lead``); the one who gets it gets a notice. With neither the
    dispute is refused (``NO_RESCORER``): an agent is never promised a re-score nobody will do."""
    evaluation = _own_evaluation(session, evaluation_id, viewer)
    if not reason.strip():
        raise ReviewError("say why you dispute the score")
    if any(r.kind == "acknowledge" for r in evaluation.responses):
        raise ReviewError("acknowledged already")
    if now - evaluation.created_at > window:
        raise ReviewError("the dispute window has closed")
    if disputes_used(session, evaluation.sample_id) >= max_disputes:
        raise ReviewError("no disputes left for this evaluation")
    rescorer = _rescorer(session, evaluation, now, zone)
    to_lead = rescorer is None
    if rescorer is None:
        rescorer = _lead(session, evaluation, lead)
    if rescorer is None:
        raise ReviewError(NO_RESCORER)
    response = QAResponse(
        evaluation_id=evaluation.id,
        kind="dispute",
        user_id=viewer.user_id,
        text=reason.strip(),
        status="open",
        at=now,
    )
    session.add(response)
    assignment = assign(session, evaluation.sample_id, rescorer, purpose="rescore", now=now, zone=zone)
    response.rescore_assignment_id = assignment.id
    session.flush()
    session.add(
        Notice(
            key=f"qa:dispute:{response.id}",
            user_id=rescorer,
            kind="qa_dispute_lead" if to_lead else "qa_rescore",
            data={"sample_id": evaluation.sample_id, "evaluation_id": evaluation.id},
            created_at=now,
        )
    )
    session.flush()
    return Dispute(response, rescorer, to_lead)


def _lead(session: Session, evaluation: QAEvaluation, username: str) -> int | None:
    """The configured QA lead, if active, allowed to score and not the agent whose call it is."""
    if not username.strip():
        return None
    user = session.execute(select(User).where(User.username == username.strip())).scalar_one_or_none()
    if user is None or not user.active or not user.has_role(*LEAD_ROLES):
        return None
    agent = session.get(Agent, evaluation.sample.agent_id) if evaluation.sample.agent_id else None
    if agent is not None and agent.user_id == user.id:
        return None
    done = session.execute(
        select(QAAssignment.id).where(
            QAAssignment.sample_id == evaluation.sample_id,
            QAAssignment.user_id == user.id,
            QAAssignment.purpose == "rescore",
            QAAssignment.done_at.is_not(None),
        )
    ).first()
    return None if done is not None else user.id  # a second re-score by the same lead: nobody is left


def _rescorer(session: Session, evaluation: QAEvaluation, now: datetime, zone: ZoneInfo) -> int | None:
    """Another evaluator: not one who scored this sample before nor the agent; least loaded today."""
    scored_by = set(
        session.execute(
            select(QAEvaluation.evaluator_id).where(
                QAEvaluation.sample_id == evaluation.sample_id,
                QAEvaluation.purpose.in_(SCORED_PURPOSES),
            )
        ).scalars()
    )
    today = now.astimezone(zone).date()
    loads: dict[int, int] = {
        user_id: count
        for user_id, count in session.execute(
            select(QAAssignment.user_id, func.count())
            .where(QAAssignment.assigned_on == today)
            .group_by(QAAssignment.user_id)
        )
    }
    choices = [
        e
        for e in qa_staff(session)
        if e.user_id not in scored_by and e.agent_id != evaluation.sample.agent_id
    ]
    if not choices:
        return None
    return min(choices, key=lambda e: (loads.get(e.user_id, 0), e.user_id)).user_id


# --- calibration ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    count: int
    mean: float | None
    stdev: float | None
    low: float | None
    high: float | None

    @property
    def range(self) -> float | None:
        return None if self.low is None or self.high is None else round(self.high - self.low, 2)


def calibrate(
    session: Session, sample_id: int, user_ids: list[int], *, now: datetime, zone: ZoneInfo
) -> list[QAAssignment]:
    """Ask several evaluators to score the same sample independently."""
    staff = {e.user_id for e in qa_staff(session)}
    unknown = [u for u in user_ids if u not in staff]
    if unknown or not user_ids:
        raise ReviewError("choose evaluators from the QA staff")
    if session.get(QASample, sample_id) is None:
        raise ReviewError("no such sample")
    return [assign(session, sample_id, u, purpose="calibration", now=now, zone=zone) for u in user_ids]


def spread(session: Session, sample_id: int) -> Spread:
    """How far apart the independent scores of one sample are: its first review and every
    calibration score (population standard deviation, and the range)."""
    totals = list(
        session.execute(
            select(QAEvaluation.total).where(
                QAEvaluation.sample_id == sample_id,
                QAEvaluation.purpose.in_(("review", "calibration")),
            )
        ).scalars()
    )
    if not totals:
        return Spread(0, None, None, None, None)
    stdev = round(statistics.pstdev(totals), 2) if len(totals) > 1 else None
    return Spread(len(totals), round(statistics.fmean(totals), 2), stdev, min(totals), max(totals))


def user_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name, User.username).where(User.id.in_(ids)))
    return {uid: display or name for uid, display, name in rows}
