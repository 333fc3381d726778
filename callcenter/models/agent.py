"""Queues (skills) and the agents who serve them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime

if TYPE_CHECKING:
    from callcenter.models.user import User

agent_queue = Table(
    "agent_queue",
    Base.metadata,
    Column("agent_id", ForeignKey("agent.id", ondelete="CASCADE"), primary_key=True),
    Column("queue_id", ForeignKey("queue.id", ondelete="CASCADE"), primary_key=True),
)

SKILL_LEVELS = ("junior", "mid", "senior")


class Queue(Base):
    __tablename__ = "queue"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # what Queue() and <Enqueue> use
    title_zh: Mapped[str] = mapped_column(String(64), default="")
    title_en: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    agents: Mapped[list[Agent]] = relationship(secondary=agent_queue, back_populates="queues")


class Agent(Base):
    __tablename__ = "agent"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    extension: Mapped[str | None] = mapped_column(String(32), unique=True)  # Asterisk interface
    twilio_identity: Mapped[str | None] = mapped_column(String(64), unique=True)
    skill_level: Mapped[str] = mapped_column(String(8), default="junior")
    team: Mapped[str] = mapped_column(String(64), default="")  # the team leader's group (班组)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    queues: Mapped[list[Queue]] = relationship(secondary=agent_queue, back_populates="agents")
    user: Mapped[User | None] = relationship(back_populates="agent")
