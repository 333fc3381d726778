"""Cases (工单): complaints, suggestions, consultations and fault reports, with their history."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime

if TYPE_CHECKING:
    from callcenter.models.agent import Agent
    from callcenter.models.call import Call
    from callcenter.models.caller import Caller
    from callcenter.models.user import User

CASE_TYPES = ("consultation", "complaint", "suggestion", "fault_report")
CASE_CHANNELS = (
    "phone",
    "email",
    "online",
    "wechat",
    "weibo",
    "walk_in",
    "external_platform",
    "regulator",
    "other",
)
CASE_STATUSES = (
    "registered",
    "classified",
    "assigned",
    "in_progress",
    "solution_pending_approval",
    "solution_approved",
    "customer_replied",
    "callback_done",
    "closed",
    "reopened",
)
COMPLEXITIES = ("ordinary", "complex")
URGENCIES = ("normal", "urgent", "major")
REMEDIES = ("refund", "exchange", "extra_service", "compensation", "none")
FOLLOW_UPS = (
    "temporarily_unsolvable",
    "appointment_booked",
    "unresolved",
    "resolve_in_n_days",
    "dissatisfied_with_result",
)
ESCALATION_LEVELS = ("agent", "team_leader", "supervisor", "manager")

case_call = Table(
    "case_call",
    Base.metadata,
    Column("case_id", ForeignKey("case_ticket.id", ondelete="CASCADE"), primary_key=True),
    Column("call_id", ForeignKey("call.id", ondelete="CASCADE"), primary_key=True),
)


class Case(Base):
    """One case. ``number`` is ``TS-YYYYMMDD-NNNN`` (the registration day in the organisation's zone).

    Deadlines are stored as instants: ``first_reply_due_at`` (24 h after registration) and
    ``resolution_due_at`` (end of the n-th working day). ``delayed`` is set by the SLA sweep.
    """

    __tablename__ = "case_ticket"  # "case" is an SQL keyword
    __table_args__ = (
        Index("ix_case_ticket_status", "status"),
        Index("ix_case_ticket_caller_id_category", "caller_id", "category"),
        Index("ix_case_ticket_registered_at", "registered_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    case_type: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(24), default="phone")
    status: Mapped[str] = mapped_column(String(32), default="registered")
    follow_up: Mapped[str | None] = mapped_column(String(32))
    follow_up_date: Mapped[date | None] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(32), default="other")
    complexity: Mapped[str] = mapped_column(String(16), default="ordinary")
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    title: Mapped[str] = mapped_column(String(200), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    persons_involved: Mapped[str] = mapped_column(Text, default="")
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("caller.id", ondelete="SET NULL"))
    contact_name: Mapped[str] = mapped_column(String(128), default="")
    contact_e164: Mapped[str | None] = mapped_column(String(20))
    contact_other: Mapped[str] = mapped_column(String(255), default="")
    department: Mapped[str | None] = mapped_column(String(32))  # owning department code
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    queue_name: Mapped[str | None] = mapped_column(String(64))  # the queue it came in on (agents' scope)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    escalation_level: Mapped[str] = mapped_column(String(16), default="agent")
    solution: Mapped[str] = mapped_column(Text, default="")
    remedy: Mapped[str | None] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(Text, default="")
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 1–5, the customer's, with the result
    repeat_of_id: Mapped[int | None] = mapped_column(ForeignKey("case_ticket.id", ondelete="SET NULL"))
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    delayed: Mapped[bool] = mapped_column(Boolean, default=False)
    redispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    signed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_reply_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    promised_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    caller: Mapped[Caller | None] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    agent: Mapped[Agent | None] = relationship()
    calls: Mapped[list[Call]] = relationship(secondary=case_call)
    history: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="(CaseEvent.at, CaseEvent.id)", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[CaseAttachment]] = relationship(
        back_populates="case", cascade="all, delete-orphan"
    )


class CaseEvent(Base):
    """Every change to a case, timestamped for KPIs: status changes, extensions (old and new due date,
    approver, reason), re-dispatches, escalations, approvals, audits, overdue marks."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_ticket.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # status, extended, redispatched, escalated, …
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    case: Mapped[Case] = relationship(back_populates="history")


class CaseAttachment(Base):
    """Evidence attached to a case; the file lives under the storage folder, named by its sha256."""

    __tablename__ = "case_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_ticket.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    case: Mapped[Case] = relationship(back_populates="attachments")
