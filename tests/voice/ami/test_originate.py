"""Outbound calls: Originate with Async, answered by an OriginateResponse event with our ActionID."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

import pytest

from callcenter.settings import Ami
from callcenter.voice.ami.client import AmiClient
from callcenter.voice.ami.originate import Outcome, originate
from tests.voice.ami.conftest import SECRET
from tests.voice.ami.fakeami import FakeAmi

Build = Callable[..., AmiClient]
SETTINGS = Ami(
    host="127.0.0.1", outbound_trunk="PJSIP/{number}@carrier", outbound_context="callcenter-outbound"
)


@pytest.fixture
def server() -> FakeAmi:
    return FakeAmi(secret=SECRET)


@pytest.fixture
def client(server: FakeAmi, make_client: Build) -> AmiClient:
    server.start()
    built = make_client(server)
    built.start()
    assert built.wait_connected(5)
    return built


@pytest.fixture(autouse=True)
def _stop(server: FakeAmi) -> object:
    yield None
    server.stop()


def test_an_answered_call(client: AmiClient, server: FakeAmi) -> None:
    result = originate(
        client,
        SETTINGS,
        "+8613800138000",
        caller_id='"Hotline" <4001234567>',
        variables={"CC_TASK_ID": 42, "CC_CAMPAIGN": "renewals"},
    )
    assert result.outcome is Outcome.ANSWERED and result.answered
    assert (result.reason_code, result.uniqueid, result.linkedid) == (4, "1795424200.9", "1795424200.9")
    action = next(action for action in server.actions if action["Action"] == "Originate")
    assert action["ActionID"] == result.action_id
    assert action["Channel"] == "PJSIP/+8613800138000@carrier" == result.channel
    assert (action["Context"], action["Exten"], action["Priority"]) == ("callcenter-outbound", "s", "1")
    assert (action["Async"], action["Timeout"], action["CallerID"]) == (
        "true",
        "30000",
        '"Hotline" <4001234567>',
    )
    assert action["Variable"].split("\n") == ["CC_TASK_ID=42", "CC_CAMPAIGN=renewals"]  # one header each


def test_ring_time_is_at_least_15_seconds_and_an_application_may_replace_the_dialplan(
    client: AmiClient, server: FakeAmi
) -> None:
    originate(client, SETTINGS, "10086", timeout_s=5, application="Playback", data="callcenter/reminder")
    action = next(action for action in server.actions if action["Action"] == "Originate")
    assert action["Timeout"] == "15000"
    assert (action["Application"], action["Data"]) == ("Playback", "callcenter/reminder")
    assert "Context" not in action


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        (0, Outcome.FAILED),
        (1, Outcome.HUNG_UP),
        (3, Outcome.NO_ANSWER),
        (5, Outcome.BUSY),
        (8, Outcome.CONGESTION),
    ],
)
def test_a_failed_call_reports_its_reason(
    client: AmiClient, server: FakeAmi, reason: int, outcome: Outcome
) -> None:
    server.originate, server.failure_reason = "failure", reason
    result = originate(client, SETTINGS, "+8613800138000")
    assert (result.outcome, result.reason_code, result.uniqueid) == (outcome, reason, None)
    assert not result.answered


def test_an_error_response_is_a_failure_not_an_exception(client: AmiClient, server: FakeAmi) -> None:
    server.originate = "error"
    result = originate(client, SETTINGS, "+8613800138000")
    assert (result.outcome, result.message) == (Outcome.REFUSED, "Extension does not exist.")
    assert client.send_action("Ping")["Ping"] == "Pong"  # the connection is fine


def test_no_originate_response_times_out(client: AmiClient, server: FakeAmi) -> None:
    server.originate = "none"
    result = originate(client, SETTINGS, "+8613800138000", wait_s=0.2)
    assert result.outcome is Outcome.TIMEOUT


def test_concurrent_originates_get_their_own_results(client: AmiClient, server: FakeAmi) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: originate(client, SETTINGS, f"1380013800{n}"), range(8)))
    assert all(result.answered for result in results)
    assert {result.channel for result in results} == {f"PJSIP/1380013800{n}@carrier" for n in range(8)}
    assert len({result.action_id for result in results}) == 8


def test_originate_without_a_connection_says_so(make_client: Build, server: FakeAmi) -> None:
    client = make_client(server)  # never started
    result = originate(client, SETTINGS, "+8613800138000")
    assert result.outcome is Outcome.NOT_CONNECTED


def test_a_bad_variable_is_refused_before_anything_is_sent(client: AmiClient) -> None:
    with pytest.raises(ValueError, match="bad channel variable"):
        originate(client, SETTINGS, "1", variables={"A=B": "1"})
