"""Blind transfer on Twilio: update the caller's live call with TwiML that dials the department.

``calls(sid).update(twiml=…)`` replaces what the caller's leg is doing: the caller leaves the agent's
conference/queue bridge and dials the department's number; the agent's leg ends. Twilio refuses the
update of a call that is no longer in progress (error 21220), which the caller sees as an error.
"""

from __future__ import annotations

from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from callcenter.voice.twilio.rest import OutboundError, classify


def transfer_twiml(number: str, *, caller_id: str = "", timeout_s: int = 30) -> str:
    response = VoiceResponse()
    if caller_id:
        response.dial(number, caller_id=caller_id, timeout=timeout_s)
    else:
        response.dial(number, timeout=timeout_s)
    return str(response)


def transfer_call(client: Client, call_sid: str, number: str, *, caller_id: str = "") -> None:
    """Send the live call ``call_sid`` to ``number``. Raises ``OutboundError`` saying whether to retry."""
    try:
        client.calls(call_sid).update(twiml=transfer_twiml(number, caller_id=caller_id))
    except Exception as exc:
        raise OutboundError(
            classify(exc), getattr(exc, "code", None), getattr(exc, "status", None), str(exc)
        ) from exc
