"""The channels that place a callback: Asterisk (AMI Originate) and Twilio (REST ``calls.create``).

Each turns one dial into a :class:`DialReport` in the attempt results of D44 and can look an
attempt up again after a crash (``lookup``): the attempt in doubt is resolved from what the channel
(or our own contact record) knows, never by dialling again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Call
from callcenter.services.timeline import LEFT_WITHOUT_AGENT
from callcenter.settings import Settings
from callcenter.voice.ami.client import AmiClient
from callcenter.voice.ami.originate import Outcome, originate
from callcenter.voice.twilio.main import enabled as twilio_enabled
from callcenter.voice.twilio.rest import OutboundError, place_call

log = logging.getLogger(__name__)

WRONG_NUMBER_CODES = frozenset({21211, 21214, 21215, 21217, 13224})  # Twilio: invalid / unreachable To


def configured_channel(settings: Settings) -> str | None:
    """The outbound channel the settings choose (``[dialler] channel``): ``twilio``, ``asterisk``, or
    ``None`` when ``auto`` finds neither Twilio nor an AMI host (no call is ever placed then)."""
    choice = settings.dialler.channel
    if choice == "twilio" or (choice == "auto" and twilio_enabled(settings)):
        return "twilio"
    if choice == "asterisk" or (choice == "auto" and settings.ami.host):
        return "asterisk"
    return None


@dataclass(frozen=True)
class DialRequest:
    key: str  # the attempt's idempotency key
    task_id: int
    number: str
    survey: bool
    language: str
    ring_s: int


@dataclass(frozen=True)
class DialReport:
    """``state``: ``sent`` (placed, outcome later), ``done`` (final ``result``), ``not_placed``."""

    state: str
    result: str | None = None
    external_id: str | None = None
    detail: str = ""
    abandoned: bool = False


@dataclass(frozen=True)
class AttemptView:
    key: str
    task_id: int
    number: str
    state: str
    external_id: str | None
    started_at: datetime


class Channel(Protocol):
    name: str

    def dial(self, request: DialRequest) -> DialReport: ...

    def lookup(self, session: Session, attempt: AttemptView, now: datetime) -> DialReport | None: ...


AMI_RESULTS: dict[Outcome, str] = {
    Outcome.ANSWERED: "reached",
    Outcome.NO_ANSWER: "no_answer",
    Outcome.BUSY: "busy",
    Outcome.CONGESTION: "no_answer",
    Outcome.HUNG_UP: "refused",
    Outcome.FAILED: "wrong_number",
}
CALL_RESULTS = {
    "answered": "reached",
    "queued": "reached",
    "ended_in_ivr": "reached",
    "abandoned_in_queue": "reached",
    "queue_timeout": "reached",
    "queue_refused": "reached",
    "queue_callback": "reached",
    "abandoned_in_ivr": "reached",
    "not_answered": "no_answer",
}
TWILIO_RESULTS = {
    "completed": "reached",
    "in-progress": "reached",
    "busy": "busy",
    "no-answer": "no_answer",
    "canceled": "no_answer",
    "failed": "wrong_number",
}


def recorded_call(session: Session, channel: str, attempt: AttemptView) -> Call | None:
    """Our own contact record of the attempt's call: by its id, or an outbound call to the number
    that started after the intent was written."""
    if attempt.external_id:
        found = session.execute(
            select(Call).where(Call.channel == channel, Call.external_id == attempt.external_id)
        ).scalar_one_or_none()
        if found is not None:
            return found
    query = (
        select(Call)
        .where(
            Call.channel == channel,
            Call.direction == "outbound",
            Call.to_e164 == attempt.number,
            Call.started_at >= attempt.started_at - timedelta(seconds=5),
        )
        .order_by(Call.started_at)
        .limit(1)
    )
    return session.execute(query).scalar_one_or_none()


def report_from_call(call: Call) -> DialReport | None:
    result = CALL_RESULTS.get(call.disposition)
    if result is None:
        return None  # still in progress (in_ivr…): ask again later
    abandoned = call.disposition in LEFT_WITHOUT_AGENT
    return DialReport(
        "done", result, call.external_id, f"from the call record ({call.disposition})", abandoned
    )


class AmiChannel:
    """AMI Originate with the attempt key as ActionID, to the outbound dialplan context (FastAGI
    ``outbound``: CC_NUMBER, CC_TASK_ID, CC_ATTEMPT, CC_FLOW_ENTRY=survey for surveys)."""

    name = "asterisk"

    def __init__(self, client: AmiClient, settings: Settings, *, in_doubt_after_s: float) -> None:
        self.client, self.settings, self.in_doubt = client, settings, timedelta(seconds=in_doubt_after_s)

    def dial(self, request: DialRequest) -> DialReport:
        variables: dict[str, str | int] = {
            "CC_NUMBER": request.number,
            "CC_TASK_ID": request.task_id,
            "CC_ATTEMPT": request.key,
            "CC_LANGUAGE": request.language,
        }
        if request.survey:
            variables["CC_FLOW_ENTRY"] = "survey"
        result = originate(
            self.client,
            self.settings.ami,
            request.number,
            variables=variables,
            timeout_s=request.ring_s,
            action_id=request.key,
        )
        if result.outcome is Outcome.NOT_CONNECTED:
            return DialReport("not_placed", detail=result.message)
        if result.outcome is Outcome.REFUSED:
            return DialReport("done", "error", detail=f"Asterisk refused the Originate: {result.message}")
        if result.outcome is Outcome.TIMEOUT:
            return DialReport("sent", detail=result.message)  # in doubt: resolved by lookup
        return DialReport(
            "done", AMI_RESULTS[result.outcome], result.linkedid, f"{result.outcome} ({result.reason_code})"
        )

    def lookup(self, session: Session, attempt: AttemptView, now: datetime) -> DialReport | None:
        call = recorded_call(session, self.name, attempt)
        if call is not None:
            return report_from_call(call)
        if now - attempt.started_at < self.in_doubt:
            return None
        # Asterisk keeps no history of an Originate we lost the answer to, and no call was recorded:
        # the attempt counts as not answered and the task waits its back-off (never an instant redial).
        return DialReport(
            "done", "no_answer", detail="in doubt: no trace of the call; counted as not answered"
        )


class TwilioChannel:
    """``calls.create`` through the REST wrapper; results from status callbacks (our call record) or,
    after ``resolve_after_s``, from Twilio itself. An intent with no CallSid is looked up in Twilio's
    call list (calls to the number since the intent): found means placed, so it is never redialled."""

    name = "twilio"

    def __init__(self, client: Any, settings: Settings, *, resolve_after_s: float, in_doubt_after_s: float):
        self.client, self.settings = client, settings
        self.resolve_after = timedelta(seconds=resolve_after_s)
        self.in_doubt = timedelta(seconds=in_doubt_after_s)

    def dial(self, request: DialRequest) -> DialReport:
        try:
            sid = place_call(self.client, self.settings, to=request.number, task_id=request.task_id)
        except OutboundError as exc:
            if exc.retry == "retryable":
                return DialReport("not_placed", detail=str(exc))
            result = "wrong_number" if exc.code in WRONG_NUMBER_CODES else "error"
            return DialReport("done", result, detail=str(exc))
        return DialReport("sent", external_id=sid)

    def lookup(self, session: Session, attempt: AttemptView, now: datetime) -> DialReport | None:
        if attempt.external_id is None:
            return self._find_placed(attempt)
        call = recorded_call(session, self.name, attempt)
        if call is not None and (report := report_from_call(call)) is not None:
            return report
        if now - attempt.started_at < self.resolve_after:
            return None
        status = str(self.client.calls(attempt.external_id).fetch().status)
        result = TWILIO_RESULTS.get(status)
        return (
            None if result is None else DialReport("done", result, attempt.external_id, f"twilio: {status}")
        )

    def _find_placed(self, attempt: AttemptView) -> DialReport:
        since = attempt.started_at - timedelta(seconds=5)
        placed = [
            call
            for call in self.client.calls.list(to=attempt.number, start_time_after=since.date(), limit=50)
            if call.date_created is None or call.date_created >= since
        ]
        if not placed:
            return DialReport("not_placed", detail="in doubt: Twilio has no such call; never placed")
        return DialReport("sent", external_id=str(placed[0].sid), detail="in doubt: found in Twilio's calls")
