"""View models: formatting decisions made once, outside the templates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from callcenter.models import Recording
from web.presenters import Display, duration, file_size, local_time, phone_number, recording_row

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_local_time_is_in_the_organisations_zone() -> None:
    assert local_time(datetime(2026, 11, 23, 17, 30, 5, tzinfo=UTC), SHANGHAI) == "2026-11-24 01:30:05"
    assert local_time(None, SHANGHAI) == ""


@pytest.mark.parametrize(("seconds", "text"), [(None, ""), (0, "0:00"), (59.6, "1:00"), (125, "2:05")])
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(("size", "text"), [(None, ""), (48_000, "48 kB"), (3_250_000, "3.2 MB")])
def test_file_size(size: int | None, text: str) -> None:
    assert file_size(size) == text


@pytest.mark.parametrize(
    ("raw", "e164", "reveal", "shown"),
    [
        ("13800138000", "+8613800138000", False, "138****8000"),
        ("13800138000", "+8613800138000", True, "+8613800138000"),
        ("anonymous", None, False, "anonymous"),
        ("12345", None, False, "1**45"),
        ("+442071838750", "+442071838750", False, "+44******8750"),
    ],
)
def test_phone_number_masked_unless_revealed(raw: str, e164: str | None, reveal: bool, shown: str) -> None:
    display = Display(zone=SHANGHAI, region="CN", locale="zh", reveal_numbers=reveal)
    assert phone_number(raw, e164, display) == shown


def test_recording_row(app: Flask) -> None:
    recording = Recording(
        source="asterisk",
        status="verified",
        duration_s=75.2,
        size_bytes=1_200_000,
        started_at=datetime(2026, 11, 23, 2, 0, 12, tzinfo=UTC),
    )
    with app.test_request_context("/?lang=zh"):
        row = recording_row(recording, SHANGHAI)
    assert (row.started, row.source, row.status, row.duration, row.size) == (
        "2026-11-23 10:00:12",
        "asterisk",
        "已校验",
        "1:15",
        "1.2 MB",
    )


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("pending", "待处理"),
        ("empty", "空录音（未接通坐席）"),
        ("missing", "缺失"),
        ("invalid", "文件不可用"),
    ],
)
def test_every_recording_status_has_a_label(app: Flask, status: str, shown: str) -> None:
    with app.test_request_context("/?lang=zh"):
        assert recording_row(Recording(source="asterisk", status=status), SHANGHAI).status == shown
