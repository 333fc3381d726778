"""The agent console's state: presence (now and its log), shift handovers, and the event outbox."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime

PRESENCE_STATUSES = ("available", "break", "on_call", "wrap_up", "offline")


class AgentPresence(Base):
    """An agent's presence now: one row per agent, rewritten on every change (the log keeps history).

    ``shift_day``/``shift_code``/``login_at``/``late`` describe the agent's current sign-on: set when
    the agent comes on from ``offline``, kept until the agent goes offline again.
    """

    __tablename__ = "agent_presence"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="offline")
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"))
    shift_day: Mapped[date | None] = mapped_column(Date)
    shift_code: Mapped[str | None] = mapped_column(String(16))
    login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    late: Mapped[bool] = mapped_column(Boolean, default=False)


class PresenceLog(Base):
    """Every presence change, timestamped. ``key`` is its natural key (a replayed change adds nothing)."""

    __tablename__ = "presence_log"
    __table_args__ = (Index("ix_presence_log_agent_id_at", "agent_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    previous: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"))
    login: Mapped[bool] = mapped_column(Boolean, default=False)  # the first change of a sign-on
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    shift_day: Mapped[date | None] = mapped_column(Date)
    shift_code: Mapped[str | None] = mapped_column(String(16))
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class ShiftHandover(Base):
    """The team leader's handover at the end of a shift (交接班记录), one per team and shift."""

    __tablename__ = "shift_handover"
    __table_args__ = (UniqueConstraint("shift_day", "shift_code", "team"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shift_day: Mapped[date] = mapped_column(Date)
    shift_code: Mapped[str] = mapped_column(String(16))
    team: Mapped[str] = mapped_column(String(64), default="")
    on_duty_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    receiving_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BusEvent(Base):
    """The event outbox: live events handed from one process to the others through the database."""

    __tablename__ = "bus_event"
    # AUTOINCREMENT on SQLite: ids are never reused after old rows are pruned (the relays read by id).
    __table_args__ = (Index("ix_bus_event_created_at", "created_at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScreenPop(Base):
    """One screen-pop as published (``event_id``), for whom, and whether a console stream wrote it.

    Written by the publisher's process (``events.TrackedBus``) before the event leaves it; the web
    process whose stream writes the pop sets ``delivered_at``. A pop still undelivered after the grace
    time gets ``missed_at`` (once, by a conditional update) and is listed on the agent's console.
    ``payload`` is the event itself: a console reconnecting to another process replays from here.
    """

    __tablename__ = "screen_pop"
    __table_args__ = (Index("ix_screen_pop_agent_id_published_at", "agent_id", "published_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"))
    call_ref: Mapped[str] = mapped_column(String(64), default="")  # linkedid or CallSid
    state: Mapped[str] = mapped_column(String(16), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
