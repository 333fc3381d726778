"""SQLAlchemy 2 typed models, one module per aggregate. Importing this package registers them all."""

from callcenter.models.agent import Agent, Queue, agent_queue
from callcenter.models.audit import AuditLog
from callcenter.models.call import Call, CallEvent, MissedRing, Recording
from callcenter.models.callback import CallbackTask
from callcenter.models.caller import Caller
from callcenter.models.campaign import (
    CallbackAttempt,
    CallbackResult,
    Campaign,
    CampaignMember,
    DoNotCall,
    SchedulerLease,
)
from callcenter.models.case import Case, CaseAttachment, CaseEvent, case_call
from callcenter.models.console import AgentPresence, BusEvent, PresenceLog, ScreenPop, ShiftHandover
from callcenter.models.login_throttle import LoginThrottle
from callcenter.models.notice import Notice
from callcenter.models.qa import (
    QAAssignment,
    QAEvaluation,
    QAResponse,
    QASample,
    QASampleRun,
    QAScorecard,
)
from callcenter.models.user import User, UserRole

__all__ = [
    "Agent",
    "AgentPresence",
    "AuditLog",
    "BusEvent",
    "Call",
    "CallEvent",
    "CallbackAttempt",
    "CallbackResult",
    "CallbackTask",
    "Caller",
    "Campaign",
    "CampaignMember",
    "Case",
    "CaseAttachment",
    "CaseEvent",
    "DoNotCall",
    "LoginThrottle",
    "MissedRing",
    "Notice",
    "PresenceLog",
    "QAAssignment",
    "QAEvaluation",
    "QAResponse",
    "QASample",
    "QASampleRun",
    "QAScorecard",
    "Queue",
    "Recording",
    "SchedulerLease",
    "ScreenPop",
    "ShiftHandover",
    "User",
    "UserRole",
    "agent_queue",
    "case_call",
]
