"""Failed sign-ins counted per username and per client address, shared by every web worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime


class LoginThrottle(Base):
    """One counter of failed sign-ins: ``scope`` is ``user`` or ``address``, ``key`` what was typed
    (lower-cased username) or the client address.

    ``failures`` counts within the window that began at ``window_started_at``; reaching the limit sets
    ``locked_until``. Kept in the database (not in process memory) so that several gunicorn workers
    and web nodes count the same failures.
    """

    __tablename__ = "login_throttle"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
