"""Call search: what a typed number means, and every filter on both databases."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from callcenter.db import Database
from callcenter.models import Agent, Call, Queue
from callcenter.services.call_search import (
    CallFilter,
    NumberPattern,
    day_range,
    number_pattern,
    search_calls,
)
from callcenter.services.callers import ensure_caller
from callcenter.services.calls import CallSeen, record_call
from callcenter.settings import load_settings
from tests.web.factories import make_call

ZONE = load_settings(overrides={}).zone


@pytest.mark.parametrize(
    ("typed", "pattern"),
    [
        ("+8613800138000", NumberPattern(exact="+8613800138000")),
        ("138 0013 8000", NumberPattern(exact="+8613800138000")),
        ("138-0013-8000", NumberPattern(exact="+8613800138000")),
        ("(021) 6123 4567", NumberPattern(exact="+862161234567")),
        ("008613800138000", NumberPattern(exact="+8613800138000")),
        ("8000", NumberPattern(digits="8000")),
        ("0216123", NumberPattern(digits="216123")),
        ("+86138", NumberPattern(digits="86138")),
        ("12", None),
        ("abc", None),
        ("  ", None),
    ],
)
def test_number_pattern(typed: str, pattern: NumberPattern | None) -> None:
    assert number_pattern(typed, "CN") == pattern


def test_day_range_is_whole_days_in_the_zone() -> None:
    start, end = day_range(date(2026, 11, 23), date(2026, 11, 23), ZONE)
    assert start is not None and end is not None
    assert start.isoformat() == "2026-11-23T00:00:00+08:00"
    assert end - start == timedelta(days=1)
    assert day_range(None, None, ZONE) == (None, None)


def ids(db: Database, found: CallFilter, **kw: int) -> list[int]:
    with db.read() as session:
        return [call.id for call in search_calls(session, found, **kw)]


@pytest.fixture
def calls(db: Database, now: datetime) -> dict[str, int]:
    made = {
        "vip": make_call(db, now, external_id="1.1", start=now - timedelta(hours=3), from_raw="13800138000"),
        "shop": make_call(
            db,
            now,
            external_id="1.2",
            start=now - timedelta(hours=2),
            from_raw="02161234567",
            caller_name="",
            branch="consultation",
        ),
        "late": make_call(
            db,
            now,
            external_id="1.3",
            start=now + timedelta(days=1),
            from_raw="15000150000",
            caller_name="Wang Wu",
        ),
    }
    with db.transaction() as session:
        queue = Queue(name="vip", title_zh="贵宾", title_en="VIP", created_at=now)
        agent = Agent(name="张伟", extension="PJSIP/1001", created_at=now)
        session.add_all([queue, agent])
        session.flush()
        vip = session.get(Call, made["vip"])
        assert vip is not None
        vip.queue_id, vip.agent_id, vip.disposition, vip.direction = (
            queue.id,
            agent.id,
            "answered",
            "outbound",
        )
        shop = session.get(Call, made["shop"])
        assert shop is not None
        archive = ensure_caller(session, "+862161234567", now=now)
        archive.name = "上海某某贸易有限公司"
        assert shop.caller_id == archive.id
    return made


def test_each_filter(db: Database, calls: dict[str, int]) -> None:
    with db.read() as session:
        vip = session.get(Call, calls["vip"])
        assert vip is not None and vip.queue_id is not None and vip.agent_id is not None
        queue_id, agent_id = vip.queue_id, vip.agent_id
    everything = [calls["late"], calls["shop"], calls["vip"]]
    assert ids(db, CallFilter()) == everything
    assert ids(db, CallFilter(number=NumberPattern(exact="+8613800138000"))) == [calls["vip"]]
    assert ids(db, CallFilter(number=NumberPattern(digits="8000"))) == [calls["vip"]]
    assert ids(db, CallFilter(number=NumberPattern(digits="2161234"))) == [calls["shop"]]
    assert ids(db, CallFilter(number=NumberPattern(digits="4008123123"))) == []  # our hotline: no customer
    assert ids(db, CallFilter(name="张")) == [calls["vip"]]  # the network's name
    assert ids(db, CallFilter(name="贸易")) == [calls["shop"]]  # the archive's name
    assert ids(db, CallFilter(name="wang")) == [calls["late"]]  # any case
    assert ids(db, CallFilter(name="%")) == []  # a wildcard is a character
    start, end = day_range(date(2026, 11, 23), date(2026, 11, 23), ZONE)
    assert ids(db, CallFilter(start=start, end=end)) == [calls["shop"], calls["vip"]]
    assert ids(db, CallFilter(start=end)) == [calls["late"]]
    assert ids(db, CallFilter(queue_id=queue_id)) == [calls["vip"]]
    assert ids(db, CallFilter(agent_id=agent_id)) == [calls["vip"]]
    assert ids(db, CallFilter(disposition="answered")) == [calls["vip"]]
    assert ids(db, CallFilter(direction="outbound")) == [calls["vip"]]
    assert ids(db, CallFilter(direction="inbound", name="贸易")) == [calls["shop"]]


def test_a_partial_number_of_very_many_customers_searches_the_calls(
    db: Database, now: datetime, calls: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("callcenter.services.call_search.MAX_CALLERS", 1)  # "1" matches 3 customers
    assert ids(db, CallFilter(number=NumberPattern(digits="1"))) == [
        calls["late"],
        calls["shop"],
        calls["vip"],
    ]
    assert ids(db, CallFilter(number=NumberPattern(digits="150001"))) == [calls["late"]]


def test_an_outbound_call_is_found_by_the_number_called(db: Database, now: datetime) -> None:
    seen = CallSeen("asterisk", "9.9", now, direction="outbound", from_raw="4008123123", to_raw="13700137000")
    with db.transaction() as session:
        call_id = record_call(session, seen, [], region="CN", now=now).id
    assert ids(db, CallFilter(number=NumberPattern(exact="+8613700137000"))) == [call_id]
    assert ids(db, CallFilter(number=NumberPattern(digits="0137000"))) == [call_id]


def test_keyset_paging_within_a_search(db: Database, now: datetime) -> None:
    made = [
        make_call(
            db,
            now,
            external_id=f"2.{index}",
            start=now + timedelta(minutes=index // 2),
            from_raw="13800138000",
        )
        for index in range(7)
    ]
    make_call(db, now, external_id="3.1", start=now, from_raw="15000150000")
    wanted = CallFilter(number=NumberPattern(exact="+8613800138000"))
    pages: list[int] = []
    before = None
    while True:
        page = ids(db, wanted, limit=3, **({"before_id": before} if before else {}))
        if not page:
            break
        pages.extend(page)
        before = page[-1]
    assert sorted(pages) == sorted(made)
    assert len(pages) == len(set(pages)) == 7
