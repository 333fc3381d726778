"""The organisation's settings the IVR engine needs, for every voice adapter (FastAGI, Twilio)."""

from __future__ import annotations

from callcenter.ivr.engine import Rules
from callcenter.ivr.hours import business_hours
from callcenter.settings import Settings


def engine_rules(settings: Settings) -> Rules:
    return Rules(
        max_retries=settings.ivr.max_retries,
        default_queue=settings.ivr.default_queue,
        vip_priority=settings.ivr.vip_priority,
        hours=business_hours(settings),
        operator_queue=settings.ivr.operator_queue,
    )
