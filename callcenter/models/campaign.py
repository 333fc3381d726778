"""Outbound campaigns, their members, dial attempts, callback results, the do-not-call list and the
scheduler's leader lease (requirements D39–D49, G67–G68)."""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime

if TYPE_CHECKING:
    from callcenter.models.agent import Agent
    from callcenter.models.callback import CallbackTask

CAMPAIGN_MODES = ("preview", "progressive", "survey")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "finished")
ATTEMPT_RESULTS = ("reached", "no_answer", "busy", "wrong_number", "refused")
ATTEMPT_STATES = ("intent", "sent", "done")


class Campaign(Base):
    """A planned set of callbacks: who (members), how (mode, pacing), when (window, zone)."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(24))  # a callback kind (CALLBACK_KINDS)
    mode: Mapped[str] = mapped_column(String(16), default="preview")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    marketing: Mapped[bool] = mapped_column(Boolean, default=False)  # G67: marketing-enabled
    timezone: Mapped[str] = mapped_column(String(64))  # fallback for ambiguous callee zones
    window_start: Mapped[time | None] = mapped_column(Time)
    window_end: Mapped[time | None] = mapped_column(Time)
    calls_per_minute: Mapped[float] = mapped_column(Float, default=10.0)
    max_concurrent: Mapped[int] = mapped_column(Integer, default=5)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    weighted: Mapped[bool] = mapped_column(Boolean, default=False)  # allocation by skill level
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the filter or the upload
    due_from: Mapped[datetime] = mapped_column(UTCDateTime())
    due_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    members: Mapped[list[CampaignMember]] = relationship(back_populates="campaign")


class CampaignMember(Base):
    """A callback task in a campaign, allocated to an agent (preview/progressive) or to none (survey)."""

    __tablename__ = "campaign_member"
    __table_args__ = (Index("ix_campaign_member_campaign_id_agent_id", "campaign_id", "agent_id"),)

    task_id: Mapped[int] = mapped_column(ForeignKey("callback_task.id", ondelete="CASCADE"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # preview: the agent clicked dial

    campaign: Mapped[Campaign] = relationship(back_populates="members")
    task: Mapped[CallbackTask] = relationship()
    agent: Mapped[Agent | None] = relationship()


class CallbackAttempt(Base):
    """One dial of a task. ``key`` is the idempotency key (AMI ActionID, our key for Twilio): the row
    is written (``intent``) and committed *before* the call is placed, so after a crash the dial is
    known to be in doubt and is resolved, never blindly repeated."""

    __tablename__ = "callback_attempt"
    __table_args__ = (
        UniqueConstraint("task_id", "number", name="uq_callback_attempt_task_id_number"),
        Index("ix_callback_attempt_state", "state"),
        Index("ix_callback_attempt_e164_started_at", "e164", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("callback_task.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 … of the task
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))  # asterisk | twilio
    e164: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(8), default="intent")
    lease_token: Mapped[int] = mapped_column(Integer, default=0)  # the leader that dialled it
    external_id: Mapped[str | None] = mapped_column(String(64))  # CallSid / Asterisk uniqueid
    result: Mapped[str | None] = mapped_column(String(16))  # ATTEMPT_RESULTS
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)  # answered, no agent: lockout
    detail: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CallbackResult(Base):
    """What the callback specialist captured with the 5-step script (D45), one row per task."""

    __tablename__ = "callback_result"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("callback_task.id", ondelete="CASCADE"), unique=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(16))  # reached / not_the_customer / an attempt result
    identity_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    problem: Mapped[str] = mapped_column(Text, default="")
    solution: Mapped[str] = mapped_column(Text, default="")
    satisfied: Mapped[bool | None] = mapped_column(Boolean)
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 1–5
    suggestion: Mapped[str] = mapped_column(Text, default="")
    attitude: Mapped[int | None] = mapped_column(Integer)  # repair orders: service attitude 1–5
    quality: Mapped[int | None] = mapped_column(Integer)  # product quality 1–5
    charges_reasonable: Mapped[bool | None] = mapped_column(Boolean)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="script")  # script | ivr_survey | other_phone
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DoNotCall(Base):
    """A number that must not be called by campaigns (the customer asked, or a regulator)."""

    __tablename__ = "do_not_call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SchedulerLease(Base):
    """The leader lease: the one scheduler holding an unexpired row runs the jobs. ``token`` grows
    with each new holder (a fencing token: work stamped with an older token is known stale)."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128), default="")
    token: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime())
