"""Display names for the codes stored on calls (branch, disposition, tier, …), in the page's language.

Codes not listed here are shown as stored, so a new code is visible before it is translated.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

BRANCHES: Mapping[str, LazyString] = {
    "consultation": _l("Consultation"),
    "complaint": _l("Complaint"),
    "timeout": _l("No choice (timeout)"),
    "invalid": _l("Invalid choice"),
    "operator": _l("Operator"),
    "callback": _l("Callback"),
    "error": _l("System error (default queue)"),
}
DISPOSITIONS: Mapping[str, LazyString] = {
    "in_ivr": _l("In IVR"),
    "queued": _l("Queued"),
    "abandoned_in_ivr": _l("Hung up in IVR"),
    "ended_in_ivr": _l("Ended in IVR"),
    "answered": _l("Answered"),
    "abandoned_in_queue": _l("Abandoned in queue"),
    "queue_timeout": _l("Queue timeout (no agent answered)"),
    "queue_refused": _l("Queue unavailable (no agent free)"),
    "queue_callback": _l("Left the queue for a callback"),
    "not_answered": _l("Not answered"),
    "completed": _l("Completed"),
}
HANGUP_SIDES: Mapping[str, LazyString] = {
    "caller": _l("Caller"),
    "agent": _l("Agent"),
    "ivr": _l("IVR (the system ended the call)"),
    "transfer": _l("Transferred away"),
}
DIRECTIONS: Mapping[str, LazyString] = {"inbound": _l("Inbound"), "outbound": _l("Outbound")}
TIERS: Mapping[str, LazyString] = {
    "vip": _l("VIP"),
    "key": _l("Key account"),
    "normal": _l("Regular"),
    "potential": _l("Prospect"),
}
RECORDING_STATUSES: Mapping[str, LazyString] = {
    "pending": _l("Pending"),
    "verified": _l("Verified"),
    "empty": _l("Empty (never bridged)"),
    "missing": _l("Missing"),
    "invalid": _l("Unusable file"),
}


def label(table: Mapping[str, LazyString], code: str | None) -> str:
    if not code:
        return ""
    text = table.get(code)
    return str(text) if text is not None else code
