"""No screen-pop is lost silently: the ledger of published pops, delivery by a stream, missed pops
listed on the console and logged, and a reconnect to another web process resuming from the ledger."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.events import SCREEN_POP, Event, LocalBus, OutboxBus, TrackedBus
from callcenter.models import ScreenPop
from tests.conftest import FIXED_NOW
from tests.console.conftest import Live, SseClient, serve, signed_in
from tests.console.factories import agent_account, answered_call
from tests.web.factories import web_settings_for
from web import create_app
from web.console import ConsoleRuntime


def _pop(event_id: str, **payload: object) -> Event:
    return Event(
        SCREEN_POP,
        {"event_id": event_id, "agent": "PJSIP/1001", "state": "ringing", "queue": "consultation", **payload},
    )


def _rows(db: Database) -> dict[str, ScreenPop]:
    with db.read() as session:
        return {row.event_id: row for row in session.execute(select(ScreenPop)).scalars()}


def _running_clock() -> Callable[[], datetime]:
    started = time.monotonic()
    return lambda: FIXED_NOW + timedelta(seconds=time.monotonic() - started)


def test_a_pop_no_console_takes_is_marked_missed_once_and_logged(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    _account, agent_id = agent_account(db, FIXED_NOW, "lina", extension="1001")
    call_id = answered_call(db, FIXED_NOW, linkedid="1795.1", start=FIXED_NOW, ended=False)
    local = LocalBus()
    tracked = TrackedBus(local, db, _running_clock(), grace_s=0.1)
    caplog.set_level(logging.WARNING, logger="callcenter.services.popledger")
    tracked.publish(_pop("lost-1", call_id=call_id, linkedid="1795.1"))
    deadline = time.monotonic() + 5
    while "lost-1" not in _rows(db) or _rows(db)["lost-1"].missed_at is None:
        assert time.monotonic() < deadline, "the pop was never marked missed"
        time.sleep(0.02)
    row = _rows(db)["lost-1"]
    assert (row.agent_id, row.call_id, row.call_ref, row.delivered_at) == (agent_id, call_id, "1795.1", None)
    warnings = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(warnings) == 1
    assert f"agent {agent_id}" in warnings[0] and f"call {call_id}" in warnings[0]


def test_a_delivered_pop_is_not_missed_and_a_missed_one_is_listed_on_the_console(
    live: Live, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    account, agent_id = agent_account(db, FIXED_NOW, "lina", extension="1001")
    session = signed_in(live.url, account)
    client = SseClient(live.url, session.cookies["callcenter_session"])
    live.clients.append(client)
    live.wait_streams(1)
    earlier = TrackedBus(live.bus, db, lambda: FIXED_NOW - timedelta(minutes=1))
    earlier.publish(_pop("seen", caller="13800138000", caller_name="张三"))
    assert client.next_event()["id"] == "seen"
    client.close()
    live.wait_streams(0)
    earlier.publish(_pop("unseen", caller="13900139000", caller_name="李四"))  # no console open
    deadline = time.monotonic() + 5
    while "unseen" not in _rows(db):  # the publisher notes it in the background
        assert time.monotonic() < deadline
        time.sleep(0.02)
    deadline = time.monotonic() + 5
    while "seen" not in _rows(db) or _rows(db)["seen"].delivered_at is None:  # marked once written
        assert time.monotonic() < deadline
        time.sleep(0.02)
    caplog.set_level(logging.WARNING, logger="callcenter.services.popledger")
    page = session.get(f"{live.url}/console", timeout=5).text  # the page marks what nobody took
    assert "未送达的来电弹屏" in page and "李四" in page and "13900139000" in page
    assert "张三" not in page.split("missed-pop-list")[1].split("</ul>")[0]
    rows = _rows(db)
    assert rows["unseen"].missed_at == FIXED_NOW and rows["seen"].missed_at is None
    assert rows["unseen"].agent_id == agent_id
    assert sum("unseen" in r.getMessage() for r in caplog.records) == 1
    session.get(f"{live.url}/console", timeout=5)  # marked once, logged once
    assert sum("unseen" in r.getMessage() for r in caplog.records) == 1


@pytest.fixture
def two_processes(tmp_path: Path, db: Database) -> Iterator[tuple[str, str]]:
    """Two web apps (as two gunicorn workers) on one database with ``bus = "database"``."""
    settings = web_settings_for(
        tmp_path, db.url, console={"bus": "database", "outbox_poll_s": 0.02, "heartbeat_s": 0.2}
    )
    apps = [create_app(settings, db, bus=LocalBus(), clock=lambda: FIXED_NOW) for _ in range(2)]
    served = [serve(app) for app in apps]
    try:
        yield served[0][0], served[1][0]
    finally:
        for (_, stop), app in zip(served, apps, strict=True):
            stop()
            runtime = app.extensions["console"]
            assert isinstance(runtime, ConsoleRuntime)
            runtime.stop()


def test_a_console_reconnecting_to_another_process_gets_what_it_missed(
    two_processes: tuple[str, str], db: Database
) -> None:
    first_url, second_url = two_processes
    account, _agent_id = agent_account(db, FIXED_NOW, "lina", extension="1001")
    cookie = signed_in(first_url, account).cookies["callcenter_session"]
    publisher = TrackedBus(OutboxBus(db, lambda: FIXED_NOW), db, lambda: FIXED_NOW)  # the AMI listener
    first = SseClient(first_url, cookie)
    try:
        time.sleep(0.3)  # the first process's relay reads its starting point
        publisher.publish(_pop("a", caller="13800138000"))
        assert first.next_event()["id"] == "a"
    finally:
        first.close()
    publisher.publish(_pop("b", caller="13800138001"))  # while the browser reconnects
    publisher.publish(_pop("not-mine", agent="PJSIP/1002"))
    second = SseClient(second_url, cookie, last_event_id="a")  # a process that never saw "a"
    try:
        event = second.next_event()
        assert event["id"] == "b" and json.loads(event["data"])["caller"]["number"] == "+8613800138001"
        publisher.publish(_pop("c", caller="13800138002"))
        assert second.next_event()["id"] == "c"  # and the live ones go on, "b" not twice
    finally:
        second.close()
