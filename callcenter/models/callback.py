"""Callback tasks: every outbound call the organisation owes or plans (回访、回拨)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime

if TYPE_CHECKING:
    from callcenter.models.call import Call
    from callcenter.models.caller import Caller

CALLBACK_KINDS = (
    "pre_sale",
    "after_sale",
    "complaint",
    "new_order",
    "repair_order",
    "key_account",
    "relationship",
    "win_back",
    "special_occasion",
    "renewal_reminder",
    "missed_call",
    "after_hours",
    "promised_reply",
    "queue_callback",
    "survey",
)
CALLBACK_STATUSES = ("pending", "claimed", "dialling", "done", "failed", "unreachable", "cancelled")


class CallbackTask(Base):
    """One callback owed to a caller. ``key`` is the natural key of what created it: replays add nothing.

    A queue callback carries ``enqueued_at``, the moment the caller joined the queue, so the callback
    keeps the caller's place in line (tasks are served by ``enqueued_at``, then ``due_at``).
    """

    __tablename__ = "callback_task"
    __table_args__ = (Index("ix_callback_task_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    number_raw: Mapped[str] = mapped_column(String(64), default="")
    number_e164: Mapped[str | None] = mapped_column(String(20))
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("caller.id", ondelete="SET NULL"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"), index=True)
    queue_name: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="zh")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    call: Mapped[Call | None] = relationship()
    caller: Mapped[Caller | None] = relationship()
