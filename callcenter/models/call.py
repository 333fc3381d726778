"""The contact record: one Call per call, its event timeline and its recordings."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime

if TYPE_CHECKING:
    from callcenter.models.agent import Agent, Queue
    from callcenter.models.caller import Caller


QA_DRAW_WHERE = "answered_at IS NOT NULL AND agent_id IS NOT NULL AND recordings_verified"


class Call(Base):
    """One row per call, upserted by (channel, external_id).

    Columns below ``-- derived --`` are recomputed from the timeline, never trusted from one event.
    Columns below ``-- kept by the database --`` are written by triggers only (migration 0010), on
    every write path; the ORM never sets them, and an instance loaded before a trigger ran holds the
    old value until refreshed.
    """

    __tablename__ = "call"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_call_started_at", "started_at"),
        # A number's calls in order: the call log's number search and the triggers that keep
        # next_contact_at (migration 0010).
        Index("ix_call_from_started", "from_e164", "started_at", "id"),
        # The call log's search (services/call_search.py): each filter with the log's order.
        Index("ix_call_to_e164", "to_e164"),
        Index("ix_call_caller_started", "caller_id", "started_at"),
        Index("ix_call_agent_started", "agent_id", "started_at"),
        Index("ix_call_queue_started", "queue_id", "started_at"),
        # The QA draw's population (services/qa_sampling.py), read by index only on PostgreSQL.
        Index(
            "ix_call_qa_draw",
            "started_at",
            postgresql_include=["id", "agent_id", "talk_s", "next_contact_at", "queue_name"],
            postgresql_where=text(QA_DRAW_WHERE),
            sqlite_where=text(QA_DRAW_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # asterisk | twilio
    external_id: Mapped[str] = mapped_column(String(64))  # Asterisk linkedid, Twilio CallSid
    direction: Mapped[str] = mapped_column(String(8), default="inbound")
    from_raw: Mapped[str] = mapped_column(String(64), default="")
    from_e164: Mapped[str | None] = mapped_column(String(20))
    from_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    to_raw: Mapped[str] = mapped_column(String(64), default="")
    to_e164: Mapped[str | None] = mapped_column(String(20))
    caller_name: Mapped[str] = mapped_column(String(128), default="")  # as sent by the network
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("caller.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # -- derived from the timeline --
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ivr_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    ivr_branch: Mapped[str | None] = mapped_column(String(32))
    last_node: Mapped[str | None] = mapped_column(String(64))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queue.id", ondelete="SET NULL"))
    queue_name: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    wait_s: Mapped[int | None] = mapped_column(Integer)
    talk_s: Mapped[int | None] = mapped_column(Integer)
    agent_interface: Mapped[str | None] = mapped_column(String(64))  # AMI member Interface
    hangup_side: Mapped[str | None] = mapped_column(String(16))  # caller | agent | transfer
    transfers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    disposition: Mapped[str] = mapped_column(String(32), default="in_ivr")
    end_reason: Mapped[str | None] = mapped_column(String(255))
    # -- wrap-up, given by the agent (not derived): a call is finished when both are given --
    wrapup_category: Mapped[str | None] = mapped_column(String(32))
    wrapup_note: Mapped[str | None] = mapped_column(Text)
    wrapped_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    wrapped_up_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # -- kept by the database (triggers, migration 0010) --
    # started_at of the next call from the same number in (started_at, id) order; NULL for the last
    # and for calls without a number (lead(started_at) over the number's calls).
    next_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # at least one recording of kind 'call', and every one of them verified
    recordings_verified: Mapped[bool] = mapped_column(Boolean, server_default=false())

    caller: Mapped[Caller | None] = relationship(back_populates="calls")
    queue: Mapped[Queue | None] = relationship()
    agent: Mapped[Agent | None] = relationship()
    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call",
        order_by="(CallEvent.at, CallEvent.seq, CallEvent.id)",
        cascade="all, delete-orphan",
    )
    recordings: Mapped[list[Recording]] = relationship(back_populates="call", cascade="all, delete-orphan")


class CallEvent(Base):
    """One step of a call's timeline. ``key`` is the event's natural key: replays are ignored."""

    __tablename__ = "call_event"
    __table_args__ = (UniqueConstraint("call_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))  # ivr.node, ivr.input, ivr.route, ivr.hangup, …
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    seq: Mapped[int] = mapped_column(Integer, default=0)  # order among events of the same instant
    source: Mapped[str] = mapped_column(String(16))  # agi | ami | twilio | web | system
    node: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    call: Mapped[Call] = relationship(back_populates="events")


class Recording(Base):
    """A recording segment of a call (a call may have several)."""

    __tablename__ = "recording"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        # The invalid files the verifier looks at again (recordings/verify.py, migration 0011).
        Index(
            "ix_recording_next_check_at",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
            sqlite_where=text("next_check_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # asterisk | twilio
    external_id: Mapped[str] = mapped_column(String(255))  # MixMonitor path, RecordingSid
    kind: Mapped[str] = mapped_column(String(16), default="call")  # call | voicemail
    uri: Mapped[str] = mapped_column(Text)  # where our copy lives (relative to the store)
    # pending | verified | empty (header only: never bridged) | missing | invalid
    status: Mapped[str] = mapped_column(String(16), default="pending")
    problem: Mapped[str | None] = mapped_column(String(255))  # why it is empty, missing or invalid
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    check_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # files read
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # an invalid file's next look
    duration_s: Mapped[float | None]
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    call: Mapped[Call] = relationship(back_populates="recordings")


class MissedRing(Base):
    """An agent the queue rang who did not answer (AMI ``AgentRingNoAnswer``; REQUIREMENTS A10).

    Kept against the agent and the call, keyed by the timeline entry it comes from (replays add none).
    """

    __tablename__ = "missed_ring"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"), index=True)
    interface: Mapped[str] = mapped_column(String(64), default="")  # the queue member that rang
    member: Mapped[str] = mapped_column(String(64), default="")  # its MemberName
    queue_name: Mapped[str | None] = mapped_column(String(64))
    ring_s: Mapped[float | None]
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    call: Mapped[Call] = relationship()
    agent: Mapped[Agent | None] = relationship()
