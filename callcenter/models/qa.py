"""QA spot-checks: sample runs, samples, assignments, versioned scorecards, evaluations, responses.

Evaluations are only ever inserted: a re-score is a new row (``version`` + 1, ``supersedes_id``), and
an agent's acknowledgement or dispute is a row of its own, so a score once given stays as it was.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime

if TYPE_CHECKING:
    from callcenter.models.agent import Agent
    from callcenter.models.call import Call, Recording
    from callcenter.models.user import User

ASSIGNMENT_PURPOSES = ("review", "calibration", "rescore")
RESPONSE_KINDS = ("acknowledge", "dispute")
DISPUTE_STATUSES = ("open", "rescored")


class QASampleRun(Base):
    """One draw for one period: the seed and every parameter that shaped it, so it can be re-drawn.

    ``population_digest`` is the sha256 of the eligible call ids (sorted), so a re-draw can show it
    saw the same population. One run per period: drawing a period again returns this row.
    """

    __tablename__ = "qa_sample_run"
    __table_args__ = (UniqueConstraint("period_start", "period_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # exclusive
    seed: Mapped[int] = mapped_column(BigInteger)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    population: Mapped[int] = mapped_column(Integer, default=0)
    population_digest: Mapped[str] = mapped_column(String(64), default="")
    sampled: Mapped[int] = mapped_column(Integer, default=0)
    trigger: Mapped[str] = mapped_column(String(16), default="job")  # job | cli | web
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    samples: Mapped[list[QASample]] = relationship(back_populates="run", order_by="QASample.id")


class QASample(Base):
    """A call drawn for review. A call is sampled at most once; ``reasons`` say why it was drawn."""

    __tablename__ = "qa_sample"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("qa_sample_run.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), unique=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recording.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"), index=True)
    queue_name: Mapped[str] = mapped_column(String(64), default="")
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)  # random, min_one, complaint, repeat
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    run: Mapped[QASampleRun] = relationship(back_populates="samples")
    call: Mapped[Call] = relationship()
    recording: Mapped[Recording] = relationship()
    agent: Mapped[Agent | None] = relationship()
    assignments: Mapped[list[QAAssignment]] = relationship(
        back_populates="sample", order_by="QAAssignment.id", cascade="all, delete-orphan"
    )
    evaluations: Mapped[list[QAEvaluation]] = relationship(
        back_populates="sample", order_by="QAEvaluation.id", cascade="all, delete-orphan"
    )


class QAAssignment(Base):
    """A sample handed to one evaluator for one purpose; what opens the recording to a QA user."""

    __tablename__ = "qa_assignment"
    __table_args__ = (
        UniqueConstraint("sample_id", "user_id", "purpose"),
        Index("ix_qa_assignment_user_id_assigned_on", "user_id", "assigned_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("qa_sample.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16), default="review")
    assigned_on: Mapped[date] = mapped_column(Date)  # the evaluator's working day (the cap counts these)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    sample: Mapped[QASample] = relationship(back_populates="assignments")
    user: Mapped[User] = relationship()


class QAScorecard(Base):
    """One version of a scorecard template; editing makes a new row with ``version`` + 1.

    ``definition`` is the validated template (sections with weights summing to 100, their items);
    see ``callcenter.services.qa_scorecards``.
    """

    __tablename__ = "qa_scorecard"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(128), default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QAEvaluation(Base):
    """A scored review of a sample. Never updated: a re-score is a new row that supersedes this one."""

    __tablename__ = "qa_evaluation"
    __table_args__ = (Index("ix_qa_evaluation_sample_id_purpose", "sample_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("qa_sample.id", ondelete="CASCADE"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("qa_assignment.id", ondelete="SET NULL"))
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("qa_scorecard.id", ondelete="RESTRICT"))
    evaluator_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(16), default="review")
    version: Mapped[int] = mapped_column(Integer, default=1)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("qa_evaluation.id", ondelete="SET NULL"))
    answers: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict
    )  # item key → points | pass | fail | na
    section_scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[float] = mapped_column(Float)
    critical_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_items: Mapped[list[str]] = mapped_column(JSON, default=list)
    comments: Mapped[str] = mapped_column(Text, default="")
    suggestions: Mapped[str] = mapped_column(Text, default="")
    case_material: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    sample: Mapped[QASample] = relationship(back_populates="evaluations")
    scorecard: Mapped[QAScorecard] = relationship()
    evaluator: Mapped[User | None] = relationship(foreign_keys=[evaluator_id])
    responses: Mapped[list[QAResponse]] = relationship(
        back_populates="evaluation",
        order_by="QAResponse.id",
        cascade="all, delete-orphan",
        foreign_keys="QAResponse.evaluation_id",
    )


class QAResponse(Base):
    """The agent's answer to an evaluation: an acknowledgement, or a dispute (re-scored by another)."""

    __tablename__ = "qa_response"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("qa_evaluation.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str | None] = mapped_column(String(16))  # disputes: open | rescored
    rescore_assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("qa_assignment.id", ondelete="SET NULL")
    )
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("qa_evaluation.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    evaluation: Mapped[QAEvaluation] = relationship(back_populates="responses", foreign_keys=[evaluation_id])
