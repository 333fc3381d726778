"""The signature check's one-HMAC path accepts exactly what twilio's RequestValidator accepts."""

from __future__ import annotations

from typing import Any, cast

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from callcenter.voice.twilio.hotline import TwilioVoice
from web.twilio import TwilioWeb

TOKEN = "secret-token"
URL = "https://cc.example.com/twilio/voice?s=abc"
FORM: MultiDict[str, str] = MultiDict([("CallSid", "CA1"), ("From", "+8613800138000"), ("Digits", "2")])


def web() -> TwilioWeb:
    return TwilioWeb(cast(TwilioVoice, None), TOKEN, "https://cc.example.com")


def sign(url: str, params: Any, token: str = TOKEN, algorithm: str | None = None) -> str:
    return str(RequestValidator(token).compute_signature(url, params, algorithm))


def test_a_signature_over_the_url_as_rebuilt_is_valid() -> None:
    assert web().valid(URL, FORM, sign(URL, FORM), None)
    assert web().valid(URL, FORM, sign(URL, FORM, algorithm="HMAC_SHA256"), "HMAC_SHA256")


def test_a_signature_over_the_url_with_its_port_is_valid_as_twilio_says() -> None:
    with_port = "https://cc.example.com:443/twilio/voice?s=abc"
    assert web().valid(URL, FORM, sign(with_port, FORM), None)


def test_forged_signatures_and_unknown_algorithms_are_refused() -> None:
    assert not web().valid(URL, FORM, sign(URL, FORM, token="other-token"), None)
    assert not web().valid(URL, FORM, sign(URL + "x", FORM), None)
    assert not web().valid(URL, MultiDict([("CallSid", "CA2")]), sign(URL, FORM), None)
    assert not web().valid(URL, FORM, sign(URL, FORM), "HMAC-MD5")
