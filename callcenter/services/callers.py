"""The customer archive: callers keyed by E.164 number."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.models import Caller
from callcenter.phone import region_of

_CALLER_BY_NUMBER = select(Caller).where(Caller.e164 == bindparam("e164"))  # built once (every new call)


def find_caller(session: Session, e164: str) -> Caller | None:
    return session.execute(_CALLER_BY_NUMBER, {"e164": e164}).scalar_one_or_none()


def ensure_caller(
    session: Session, e164: str, *, now: datetime, name: str = "", tier: str = "normal"
) -> Caller:
    """The caller with this number, created on first contact (safe under concurrent first calls)."""
    insert_ignoring_duplicates(
        session,
        Caller,
        [
            {
                "e164": e164,
                "name": name,
                "tier": tier,
                "region": region_of(e164, "zh"),
                "notes": "",
                "created_at": now,
                "updated_at": now,
            }
        ],
        ["e164"],
    )
    caller = find_caller(session, e164)
    assert caller is not None
    return caller


_TIER_OF = select(Caller.tier).where(Caller.e164 == bindparam("e164"))  # built once: asked on every call


def is_vip(session: Session, e164: str | None) -> bool:
    if not e164:
        return False
    tier = session.execute(_TIER_OF, {"e164": e164}).scalar_one_or_none()
    return tier == "vip"
