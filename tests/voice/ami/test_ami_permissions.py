"""AMI write classes: the start-up check (ListCommands), the refused action logged once, QueuePause.

The fake answers as Asterisk 22 did in tests/captures/scenarios/queue-pause-permission/.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callcenter.db import Database
from callcenter.settings import Settings
from callcenter.voice.ami.client import WRITE_LINE, AmiClient, refusals
from callcenter.voice.ami.main import build_ami, running_ami
from callcenter.voice.ami.pause import queue_pause, sync_presence
from callcenter.voice.ami.protocol import Message
from callcenter.voice.ami.redirect import redirect
from tests.conftest import FIXED_NOW
from tests.voice.ami.conftest import SECRET, wait_for
from tests.voice.ami.fakeami import FakeAmi

Build = Callable[..., AmiClient]
MEMBER = "Local/1001@agents-sim/n"  # the capture's agent, in one queue (consultation)


@pytest.fixture(autouse=True)
def fresh_refusals() -> Iterator[None]:
    refusals.reset()  # process-wide by design; each test starts from a process that saw no refusal
    yield
    refusals.reset()


@pytest.fixture
def shipped_before() -> Iterator[FakeAmi]:
    """The user as docs/asterisk/manager.conf shipped it before: ``write = originate,call``."""
    server = FakeAmi(secret=SECRET, write="originate,call", read="call,agent,dialplan,cdr,agi").start()
    yield server
    server.stop()


@pytest.fixture
def shipped_now() -> Iterator[FakeAmi]:
    server = FakeAmi(secret=SECRET, write="originate,call,agent", read="call,agent,dialplan,cdr,agi").start()
    yield server
    server.stop()


def connected(make_client: Build, server: FakeAmi, **options: object) -> AmiClient:
    client = make_client(server, **options)
    client.start()
    assert client.wait_connected(5), client.last_error
    return client


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def test_the_shipped_manager_conf_grants_what_the_check_asks_for() -> None:
    conf = (Path(__file__).resolve().parents[3] / "docs" / "asterisk" / "manager.conf").read_text()
    lines = [line.split(";")[0].strip() for line in conf.splitlines()]
    assert WRITE_LINE == "write = originate,call,agent"
    assert WRITE_LINE in lines


def test_list_commands_names_only_what_the_user_may_run(
    shipped_before: FakeAmi, shipped_now: FakeAmi, make_client: Build
) -> None:
    before = connected(make_client, shipped_before).permitted_actions()
    assert {"Originate", "Redirect", "Getvar", "Ping", "ListCommands"} <= before
    assert "QueuePause" not in before and "Command" not in before
    assert "QueuePause" in connected(make_client, shipped_now).permitted_actions()


def test_start_up_warns_once_about_the_missing_agent_class(
    db: Database, shipped_before: FakeAmi, caplog: pytest.LogCaptureFixture, ami_settings: Settings
) -> None:
    caplog.set_level(logging.INFO)
    settings = ami_settings.model_copy(
        update={"ami": ami_settings.ami.model_copy(update={"port": shipped_before.port})}
    )
    service = build_ami(settings, db, lambda: FIXED_NOW)
    assert service is not None
    with running_ami(service):
        assert service.permissions_checked.wait(5)
        assert service.permissions == {"agent": ["QueuePause"]}
        shipped_before.drop()  # a reconnect checks again but does not repeat the same warning
        wait_for(lambda: shipped_before.logins >= 2, message="the second login")
        wait_for(lambda: sum(a.get("Action") == "ListCommands" for a in shipped_before.actions) >= 2)
        service.client.drain()
    found = [line for line in warnings(caplog) if "lacks the write class" in line]
    assert len(found) == 1, warnings(caplog)
    assert "'agent'" in found[0] and "QueuePause" in found[0]
    assert "write = originate,call,agent" in found[0] and "manager reload" in found[0]


def test_start_up_is_quiet_with_the_shipped_classes(
    db: Database, shipped_now: FakeAmi, caplog: pytest.LogCaptureFixture, ami_settings: Settings
) -> None:
    caplog.set_level(logging.INFO)
    settings = ami_settings.model_copy(
        update={"ami": ami_settings.ami.model_copy(update={"port": shipped_now.port})}
    )
    service = build_ami(settings, db, lambda: FIXED_NOW)
    assert service is not None
    with running_ami(service):
        assert service.permissions_checked.wait(5)
        assert service.permissions == {}
    assert not [line for line in warnings(caplog) if "write class" in line]
    assert "may run Originate, Redirect, QueuePause" in caplog.text


def test_a_refused_pause_is_logged_once_with_the_fix(
    shipped_before: FakeAmi, make_client: Build, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = connected(make_client, shipped_before)
    results = [queue_pause(client, MEMBER, paused=paused, reason="break") for paused in (True, False, True)]
    assert [(r.ok, r.message) for r in results] == [(False, "Permission denied")] * 3
    second = connected(make_client, shipped_before)  # another connection of the same process
    assert queue_pause(second, MEMBER, paused=True).message == "Permission denied"
    found = [line for line in warnings(caplog) if "Permission denied" in line]
    assert len(found) == 1, warnings(caplog)
    assert "may not run QueuePause" in found[0] and "'agent'" in found[0]
    assert "write = originate,call,agent" in found[0]
    # Another action refused is its own first refusal.
    shipped_before.users["callcenter"] = shipped_before.users["callcenter"].__class__(
        SECRET, frozenset({"agent"}), frozenset({"agent"})
    )
    third = connected(make_client, shipped_before)
    assert not redirect(third, "PJSIP/1-1", "callcenter-departments", "801").ok
    assert not redirect(third, "PJSIP/1-1", "callcenter-departments", "801").ok
    found = [line for line in warnings(caplog) if "Permission denied" in line]
    assert len(found) == 2 and "may not run Redirect" in found[1] and "'call'" in found[1]


def test_presence_sync_logs_the_refusal_once(
    shipped_before: FakeAmi, ami_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = ami_settings.ami.model_copy(update={"port": shipped_before.port})
    for status in ("break", "available", "wrap_up"):
        thread = sync_presence(settings, lambda: FIXED_NOW, "PJSIP/1001", status)
        assert thread is not None
        thread.join(5)
    assert sum(a.get("Action") == "QueuePause" for a in shipped_before.actions) == 3
    assert len([line for line in warnings(caplog) if "QueuePause" in line]) == 1, warnings(caplog)


def test_pause_works_with_the_agent_class(
    shipped_now: FakeAmi, make_client: Build, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    listener = connected(make_client, shipped_now)  # the event connection
    seen: list[Message] = []
    listener.add_handler(
        lambda message: seen.append(message) if message.event == "QueueMemberPause" else None
    )
    actor = connected(make_client, shipped_now, events="off")  # like sync_presence's short connection
    paused = queue_pause(actor, MEMBER, paused=True, reason="break")
    assert (paused.ok, paused.message) == (True, "Interface paused successfully")
    unpaused = queue_pause(actor, MEMBER, paused=False)
    assert (unpaused.ok, unpaused.message) == (True, "Interface unpaused successfully")
    wait_for(lambda: len(seen) == 2, message="two QueueMemberPause events")
    assert [(m["Queue"], m["Interface"], m["Paused"], m["PausedReason"]) for m in seen] == [
        ("consultation", MEMBER, "1", "break"),
        ("consultation", MEMBER, "0", ""),
    ]
    assert seen[0]["Privilege"] == "agent,all"
    stranger = queue_pause(actor, "Local/1009@agents-sim/n", paused=True)
    assert (stranger.ok, stranger.message) == (False, "Interface not found")
    assert not [line for line in warnings(caplog) if "Permission denied" in line]
