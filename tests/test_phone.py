from __future__ import annotations

import pytest

from callcenter.phone import mask, normalise, region_of


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+8613800138000", "+8613800138000"),
        ("13800138000", "+8613800138000"),
        ("010-12345678", "+861012345678"),
        ("(021) 6123 4567", "+862161234567"),
        ("+86 138 0013 800", None),  # one digit short
        ("+14155552671", "+14155552671"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, e164: str | None) -> None:
    assert normalise(raw, "CN").e164 == e164


@pytest.mark.parametrize(
    "raw", ["", "anonymous", "<unknown>", "garbage", "12", "+86 138", "☎️☎️", "x" * 500, None]
)
def test_unparseable_numbers_are_kept_and_flagged(raw: str | None) -> None:
    number = normalise(raw, "CN")
    assert number.e164 is None
    assert not number.valid
    assert number.raw == (raw or "").strip()[:64]


def test_region_comes_from_the_geocoder_in_chinese() -> None:
    assert region_of("+8613800138000") == "北京市"
    assert region_of("+862161234567") == "上海市"
    assert region_of("not a number") == ""


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+8613812345678", "138****5678"),
        ("+861012345678", "010****5678"),
        ("+14155552671", "+14*****2671"),
        ("anonymous", "anonymous"),
        ("", ""),
        ("1234", "****"),
    ],
)
def test_masking(number: str, masked: str) -> None:
    assert mask(number) == masked
