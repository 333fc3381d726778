"""Phone numbers: E.164 normalisation, region and masking, on top of phonenumbers.

A number that cannot be parsed is kept exactly as received and flagged; nothing here raises on
network input.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import phonenumbers
from phonenumbers import geocoder

MAX_RAW_LENGTH = 64
# What Asterisk and carriers send when there is no usable number.
ANONYMOUS = frozenset({"", "anonymous", "unknown", "<unknown>", "private", "restricted", "unavailable"})


@dataclass(frozen=True)
class PhoneNumber:
    raw: str
    e164: str | None

    @property
    def valid(self) -> bool:
        return self.e164 is not None

    @property
    def display(self) -> str:
        return self.e164 or self.raw


@functools.lru_cache(maxsize=4096)  # the same numbers come back within a call and across calls
def normalise(raw: str | None, region: str = "CN") -> PhoneNumber:
    """Parse ``raw`` in ``region``; valid numbers come back in E.164, others with ``e164=None``."""
    text = (raw or "").strip()[:MAX_RAW_LENGTH]
    if text.lower() in ANONYMOUS:
        return PhoneNumber(raw=text, e164=None)
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return PhoneNumber(raw=text, e164=None)
    if not phonenumbers.is_valid_number(parsed):
        return PhoneNumber(raw=text, e164=None)
    return PhoneNumber(raw=text, e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def region_of(e164: str, language: str = "zh") -> str:
    """Where the number is from (city/province for landlines and mobile prefixes), in ``language``."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ""
    return str(geocoder.description_for_number(parsed, language) or "")


def mask(number: str | None, region: str = "CN") -> str:
    """Hide the middle of a number for roles with no need to know: ``138****5678``.

    Numbers of ``region`` are shown in national digits (as agents read them), others in E.164.
    """
    if not number:
        return ""
    if number.strip().lower() in ANONYMOUS:
        return number
    text = number
    try:
        parsed = phonenumbers.parse(number, region)
        if phonenumbers.region_code_for_number(parsed) == region:
            national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            text = "".join(ch for ch in national if ch.isdigit())
    except phonenumbers.NumberParseException:
        pass
    length = len(text)
    if length <= 4:
        return "*" * length
    if length <= 7:
        return text[:1] + "*" * (length - 3) + text[-2:]
    return text[:3] + "*" * (length - 7) + text[-4:]


def warm_up(region: str = "CN") -> None:
    """Load phonenumbers' metadata and geocoder data for ``region`` now, not on a caller's first call.

    The geocoder's tables are about 100 MB of Python objects; loaded before a server forks or freezes
    its heap (``callcenter.runtime.settle``), they are shared and never scanned by the collector.
    """
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is not None:
        geocoder.description_for_number(example, "zh")
        geocoder.description_for_number(example, "en")
