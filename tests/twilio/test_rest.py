"""Outbound calls through twilio's REST client, served by the fake API on 127.0.0.1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from callcenter.voice.twilio.rest import OutboundError, classify, make_client, place_call
from tests.twilio.conftest import ACCOUNT, CALLER, PUBLIC, FakeTwilio, twilio_settings_for


def test_calls_create_asks_for_our_flow_status_callbacks_and_a_ring_timeout(
    tmp_path: Path, fake_api: FakeTwilio
) -> None:
    settings = twilio_settings_for(tmp_path, "sqlite://", fake_api.base_url, ring_timeout_s=25)
    sid = place_call(make_client(settings), settings, to=CALLER, task_id=42)
    assert sid == "CA" + "f" * 32
    method, path, form = fake_api.requests[-1]
    assert (method, path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
    assert form["To"] == [CALLER]
    assert form["From"] == ["+864008123123"]
    assert form["Url"] == [f"{PUBLIC}/twilio/outbound/42"]
    assert form["StatusCallback"] == [f"{PUBLIC}/twilio/status"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["Timeout"] == ["25"]
    assert "MachineDetection" not in form


def test_answering_machine_detection_when_configured(tmp_path: Path, fake_api: FakeTwilio) -> None:
    settings = twilio_settings_for(tmp_path, "sqlite://", fake_api.base_url, machine_detection=True)
    place_call(make_client(settings), settings, to=CALLER, task_id=1)
    assert fake_api.requests[-1][2]["MachineDetection"] == ["Enable"]


@pytest.mark.parametrize(
    ("status", "code", "retry"),
    [
        (400, 21211, "final"),  # invalid 'To' number
        (400, 21215, "final"),  # no geographic permission
        (401, 20003, "final"),  # authentication
        (429, 20429, "retryable"),
        (503, 20503, "retryable"),
        (500, 20500, "retryable"),
    ],
)
def test_twilio_errors_are_retryable_or_final(
    tmp_path: Path, fake_api: FakeTwilio, status: int, code: int, retry: str
) -> None:
    settings = twilio_settings_for(tmp_path, "sqlite://", fake_api.base_url)
    fake_api.create_error = (status, code, "refused")
    with pytest.raises(OutboundError) as caught:
        place_call(make_client(settings), settings, to=CALLER, task_id=1)
    assert (caught.value.retry, caught.value.code, caught.value.status) == (retry, code, status)


def test_an_unreachable_api_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    settings = twilio_settings_for(tmp_path, "sqlite://", f"http://127.0.0.1:{port}")
    with pytest.raises(OutboundError) as caught:
        place_call(make_client(settings), settings, to=CALLER, task_id=1)
    assert caught.value.retry == "retryable"


def test_classify() -> None:
    assert classify(TwilioRestException(404, "/x", "gone", code=20404)) == "final"
    assert classify(TwilioRestException(400, "/x", "blocked for now", code=13225)) == "retryable"
    assert classify(requests.ConnectionError("reset")) == "retryable"
    assert classify(requests.Timeout("slow")) == "retryable"
    assert classify(TwilioException("bad credentials")) == "final"
    assert classify(ValueError("bug")) == "final"


def test_the_client_never_reads_twilio_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACfromenvironment")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    client = make_client(twilio_settings_for(tmp_path, "sqlite://"))
    assert client.account_sid == ACCOUNT
    assert client.region is None
