"""Display names of the codes stored on cases, in the page's language (see ``web/labels.py``)."""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

CASE_TYPES: Mapping[str, LazyString] = {
    "consultation": _l("Consultation"),
    "complaint": _l("Complaint"),
    "suggestion": _l("Suggestion"),
    "fault_report": _l("Fault report"),
}
CHANNELS: Mapping[str, LazyString] = {
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "online": _l("Online"),
    "wechat": _l("WeChat"),
    "weibo": _l("Weibo"),
    "walk_in": _l("Walk-in"),
    "external_platform": _l("External platform"),
    "regulator": _l("Regulator"),
    "other": _l("Other"),
}
STATUSES: Mapping[str, LazyString] = {
    "registered": _l("Registered"),
    "classified": _l("Classified"),
    "assigned": _l("Assigned"),
    "in_progress": _l("In progress"),
    "solution_pending_approval": _l("Solution awaiting approval"),
    "solution_approved": _l("Solution approved"),
    "customer_replied": _l("Customer replied"),
    "callback_done": _l("Callback done"),
    "closed": _l("Closed"),
    "reopened": _l("Reopened"),
}
COMPLEXITIES: Mapping[str, LazyString] = {"ordinary": _l("Ordinary"), "complex": _l("Complex")}
URGENCIES: Mapping[str, LazyString] = {"normal": _l("Normal"), "urgent": _l("Urgent"), "major": _l("Major")}
REMEDIES: Mapping[str, LazyString] = {
    "refund": _l("Refund"),
    "exchange": _l("Exchange"),
    "extra_service": _l("Extra service"),
    "compensation": _l("Compensation"),
    "none": _l("None"),
}
FOLLOW_UPS: Mapping[str, LazyString] = {
    "temporarily_unsolvable": _l("Temporarily unsolvable"),
    "appointment_booked": _l("Appointment booked"),
    "unresolved": _l("Unresolved"),
    "resolve_in_n_days": _l("To be resolved by a date"),
    "dissatisfied_with_result": _l("Dissatisfied with the result"),
}
ESCALATION_LEVELS: Mapping[str, LazyString] = {
    "agent": _l("Agent"),
    "team_leader": _l("Team leader"),
    "supervisor": _l("Supervisor"),
    "manager": _l("CS manager"),
}
EVENT_KINDS: Mapping[str, LazyString] = {
    "status": _l("Status change"),
    "extended": _l("Deadline extended"),
    "redispatched": _l("Re-dispatched"),
    "escalated": _l("Escalated"),
    "reply_audit": _l("Reply audit"),
    "callback_recorded": _l("Complaint callback"),
    "repeat_flagged": _l("Repeat complaint"),
    "overdue": _l("Overdue"),
    "first_reply_overdue": _l("First reply overdue"),
    "first_reply": _l("First reply"),
    "follow_up": _l("Follow-up"),
    "promised_reply": _l("Reply promised"),
    "attachment": _l("Attachment"),
    "call_linked": _l("Call linked"),
}
CALLBACK_OUTCOMES: Mapping[str, LazyString] = {
    "reached": _l("Reached, survey answered"),
    "resolved_confirmed": _l("Customer confirms it is resolved"),
    "not_resolved": _l("Customer says it is not resolved"),
}
YES = _l("yes")
NO = _l("no")
# The fields a case event's data holds (the history's details).
EVENT_FIELDS: Mapping[str, LazyString] = {
    "channel": _l("Channel"),
    "category": _l("Category"),
    "complexity": _l("Complexity"),
    "urgency": _l("Urgency"),
    "department": _l("Department"),
    "from_department": _l("From department"),
    "to_department": _l("To department"),
    "count": _l("Times re-dispatched"),
    "remedy": _l("Remedy"),
    "approved_by": _l("Approved by"),
    "rejected_by": _l("Rejected by"),
    "approver": _l("Approved by"),
    "passed": _l("Passed"),
    "outcome": _l("Outcome"),
    "satisfaction": _l("Satisfaction"),
    "from": _l("From"),
    "to": _l("To"),
    "old_due": _l("Old due date"),
    "new_due": _l("New due date"),
    "follow_up": _l("Follow-up"),
    "date": _l("Date"),
    "at": _l("Time"),
    "late": _l("Late"),
    "call_id": _l("Call"),
    "repeat_of": _l("Repeat of"),
    "filename": _l("File"),
}
