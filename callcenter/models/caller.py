"""Callers (the customer archive), keyed by their E.164 number."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime

if TYPE_CHECKING:
    from callcenter.models.call import Call

TIERS = ("vip", "key", "normal", "potential")


class Caller(Base):
    __tablename__ = "caller"

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    tier: Mapped[str] = mapped_column(String(16), default="normal")
    region: Mapped[str] = mapped_column(String(128), default="")  # from phonenumbers' geocoder
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    calls: Mapped[list[Call]] = relationship(back_populates="caller")

    @property
    def is_vip(self) -> bool:
        return self.tier == "vip"
