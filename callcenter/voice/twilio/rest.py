"""Twilio's REST API: the injected client, outbound calls, and which errors are worth retrying.

The client is built once per process from settings (``make_client``) and passed to whoever needs it;
nothing here keeps a global client. ``settings.twilio.api_base_url`` (tests: a local HTTP server)
replaces ``https://api.twilio.com`` in every request through ``BaseUrlHttpClient``.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from callcenter.exceptions import ConfigurationError
from callcenter.settings import Settings

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
REST_TIMEOUT_S = 10.0
MIN_RING_TIMEOUT_S = 15

Retry = Literal["retryable", "final"]
_NO_ENVIRONMENT = {"CALLCENTER_TWILIO": "settings"}

# Twilio error codes worth another attempt later (the others describe the request or the number).
RETRYABLE_CODES = frozenset(
    {
        20429,  # too many requests
        20500,  # internal server error
        20503,  # service unavailable
        20504,  # gateway timeout
        31005,  # connection error
        31009,  # transport error
        13225,  # call blocked for now (fraud guard, rate limits): try again later
        21220,  # invalid call state (a previous attempt still ending)
    }
)


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's HTTP client, sending every API request to ``base_url`` instead of api.twilio.com."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def api_base(settings: Settings) -> str:
    return (settings.twilio.api_base_url or TWILIO_API).rstrip("/")


def credentials(settings: Settings) -> tuple[str, str]:
    twilio = settings.twilio
    if not twilio.account_sid or twilio.auth_token is None:
        raise ConfigurationError(
            "Twilio needs twilio.account_sid and CALLCENTER_TWILIO__AUTH_TOKEN (environment only)"
        )
    return twilio.account_sid, twilio.auth_token.get_secret_value()


def make_client(settings: Settings, http_client: Any = None) -> Client:
    """A REST client for the configured account (never read from TWILIO_* environment variables)."""
    account_sid, token = credentials(settings)
    if http_client is None:
        if settings.twilio.api_base_url:
            http_client = BaseUrlHttpClient(settings.twilio.api_base_url, timeout=REST_TIMEOUT_S)
        else:
            http_client = TwilioHttpClient(timeout=REST_TIMEOUT_S)
    # Not os.environ (twilio falls back to it for an empty mapping): settings are the only source.
    return Client(account_sid, token, http_client=http_client, environment=_NO_ENVIRONMENT)


class OutboundError(Exception):
    """``calls.create`` failed; ``retry`` says whether a later attempt may succeed."""

    def __init__(self, retry: Retry, code: int | None, status: int | None, message: str) -> None:
        super().__init__(retry, code, status, message)
        self.retry, self.code, self.status, self.message = retry, code, status, message

    def __str__(self) -> str:
        return f"{self.retry}: {self.message} (status {self.status}, code {self.code})"


def classify(exc: BaseException) -> Retry:
    """Map an error of the REST client to ``retryable`` (network, throttling, Twilio's 5xx) or ``final``."""
    if isinstance(exc, TwilioRestException):
        if exc.code in RETRYABLE_CODES:
            return "retryable"
        status = int(exc.status or 0)
        return "retryable" if status == 429 or status >= 500 else "final"
    if isinstance(exc, requests.RequestException | ConnectionError | TimeoutError):
        return "retryable"
    if isinstance(exc, TwilioException):
        return "final"  # the client refused the request itself (credentials, arguments)
    return "final"


def place_call(
    client: Client,
    settings: Settings,
    *,
    to: str,
    task_id: int,
    machine_detection: bool | None = None,
) -> str:
    """Dial ``to`` for callback task ``task_id`` with the outbound flow; returns the new CallSid.

    Twilio requests ``/twilio/outbound/<task>`` when the callee answers and posts every status change
    to ``/twilio/status``. Raises ``OutboundError`` saying whether to retry.
    """
    twilio = settings.twilio
    base = twilio.public_base_url.rstrip("/")
    detect = twilio.machine_detection if machine_detection is None else machine_detection
    options: dict[str, Any] = {
        "to": to,
        "from_": twilio.caller_id,
        "url": f"{base}/twilio/outbound/{task_id}",
        "method": "POST",
        "status_callback": f"{base}/twilio/status",
        "status_callback_method": "POST",
        "status_callback_event": ["initiated", "ringing", "answered", "completed"],
        "timeout": max(MIN_RING_TIMEOUT_S, twilio.ring_timeout_s),
    }
    if detect:
        options["machine_detection"] = "Enable"
    try:
        call = client.calls.create(**options)
    except Exception as exc:
        retry = classify(exc)
        if retry == "final" and not isinstance(exc, TwilioException | requests.RequestException):
            raise
        code = getattr(exc, "code", None)
        status = getattr(exc, "status", None)
        message = getattr(exc, "msg", None) or str(exc)
        log.warning("twilio: calling task %s failed (%s): %s", task_id, retry, message)
        raise OutboundError(retry, code, status, str(message)) from exc
    return str(call.sid)
