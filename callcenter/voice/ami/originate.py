"""Outbound calls for campaigns and callbacks: AMI ``Originate`` with ``Async: true``.

Asterisk first answers the action (``Response: Success`` "Originate successfully queued", or
``Error``), then, when the dialled party answers or the attempt fails, sends an ``OriginateResponse``
event with the same ActionID: ``Response: Success``/``Failure`` and a ``Reason`` code (Asterisk's
control frame: 0 failed, 1 hung up, 3 ring timeout, 4 answered, 5 busy, 8 congestion). ``originate``
waits for that event and returns a frozen :class:`OriginateResult`; it never raises for a refused or
failed call (the campaign records the outcome and goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from callcenter.settings import Ami
from callcenter.voice.ami.client import PERMISSION_DENIED, AmiClient, AmiError
from callcenter.voice.ami.protocol import HeaderValue

log = logging.getLogger(__name__)

MIN_RING_S = 15


class Outcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"  # rang until the timeout
    BUSY = "busy"
    CONGESTION = "congestion"  # network or trunk unavailable
    HUNG_UP = "hung_up"  # rejected or hung up before answering
    FAILED = "failed"  # reason 0: no such channel/extension, dial failed
    REFUSED = "refused"  # the Originate action itself got ``Response: Error``
    TIMEOUT = "timeout"  # no OriginateResponse in time
    NOT_CONNECTED = "not_connected"  # AMI was down (the caller may retry later)


REASONS: dict[int, Outcome] = {
    0: Outcome.FAILED,
    1: Outcome.HUNG_UP,
    3: Outcome.NO_ANSWER,
    4: Outcome.ANSWERED,
    5: Outcome.BUSY,
    8: Outcome.CONGESTION,
}


@dataclass(frozen=True)
class OriginateResult:
    action_id: str
    outcome: Outcome
    channel: str
    reason_code: int | None = None
    uniqueid: str | None = None
    linkedid: str | None = None
    message: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.outcome is Outcome.ANSWERED


def _headers(
    channel: str,
    settings: Ami,
    *,
    ring_s: int,
    caller_id: str,
    variables: Mapping[str, str],
    context: str | None,
    exten: str,
    priority: int,
    application: str | None,
    data: str,
) -> dict[str, HeaderValue]:
    for name, value in variables.items():
        if "=" in name or not name or any(ch in name + value for ch in "\r\n"):
            raise ValueError(f"bad channel variable {name!r}")
    headers: dict[str, HeaderValue] = {"Channel": channel}
    if application:
        headers.update({"Application": application, "Data": data})
    else:
        target = {"Context": context or settings.outbound_context, "Exten": exten, "Priority": str(priority)}
        headers.update(target)
    headers.update({"Timeout": str(ring_s * 1000), "Async": "true"})
    if caller_id:
        headers["CallerID"] = caller_id
    if variables:
        headers["Variable"] = [f"{name}={value}" for name, value in variables.items()]  # one header each
    return headers


def _outcome(response: str, code: int | None) -> Outcome:
    if response == "Success":
        return Outcome.ANSWERED
    outcome = REASONS.get(code if code is not None else 0, Outcome.FAILED)
    return Outcome.FAILED if outcome is Outcome.ANSWERED else outcome  # Failure + 4: trust Response


def originate(
    client: AmiClient,
    settings: Ami,
    number: str,
    *,
    caller_id: str = "",
    variables: Mapping[str, str | int] | None = None,
    context: str | None = None,
    exten: str = "s",
    priority: int = 1,
    application: str | None = None,
    data: str = "",
    timeout_s: int | None = None,
    wait_s: float | None = None,
    action_id: str | None = None,
) -> OriginateResult:
    """Dial ``number`` through ``settings.outbound_trunk``; when answered, go to the dialplan
    (``context``/``exten``/``priority``, default ``settings.outbound_context``) or run ``application``.

    ``timeout_s`` is how long it rings (at least 15 s; default ``settings.originate_timeout_s``);
    ``wait_s`` how long to wait for the OriginateResponse (default: ring time + action timeout);
    ``action_id`` lets the caller name the action (the dialler's idempotency key), else a fresh one.
    Raises ValueError only for a bad variable name/value (a programming error).
    """
    ring_s = max(MIN_RING_S, timeout_s if timeout_s is not None else settings.originate_timeout_s)
    channel = settings.outbound_trunk.format(number=number)
    action_id = action_id or client.next_action_id()
    values = {name: str(value) for name, value in (variables or {}).items()}
    headers = _headers(
        channel,
        settings,
        ring_s=ring_s,
        caller_id=caller_id,
        variables=values,
        context=context,
        exten=exten,
        priority=priority,
        application=application,
        data=data,
    )
    waiter = client.expect_event(action_id, "OriginateResponse")
    try:
        response = client.send_action("Originate", headers, action_id=action_id)
    except AmiError as exc:
        waiter.cancel()
        log.warning("originate to %s not sent: %s", channel, exc)
        outcome = Outcome.TIMEOUT if client.connected else Outcome.NOT_CONNECTED
        return OriginateResult(action_id, outcome, channel, message=str(exc), variables=values)
    if response.get("Response") != "Success":
        waiter.cancel()
        # A missing write class is logged once by the client, with the fix; not once per call.
        level = logging.DEBUG if response.get("Message") == PERMISSION_DENIED else logging.WARNING
        log.log(level, "originate to %s refused: %s", channel, response.get("Message"))
        return OriginateResult(
            action_id, Outcome.REFUSED, channel, message=response.get("Message"), variables=values
        )
    event = waiter.wait(wait_s if wait_s is not None else ring_s + client.action_timeout_s)
    if event is None:
        message = "no OriginateResponse in time"
        return OriginateResult(action_id, Outcome.TIMEOUT, channel, message=message, variables=values)
    try:
        code: int | None = int(event.get("Reason"))
    except ValueError:
        code = None
    raw_uniqueid = event.get("Uniqueid")
    uniqueid = None if raw_uniqueid in ("", "<null>") else raw_uniqueid
    return OriginateResult(
        action_id,
        _outcome(event.get("Response"), code),
        channel,
        reason_code=code,
        uniqueid=uniqueid,
        linkedid=event.get("Linkedid") or uniqueid,
        message=event.get("Response"),
        variables=values,
    )
