"""Who may see a customer's full number and who may search by part of one (REQUIREMENTS G65).

One place for the call log, a call's page, the case list and the new-case form: a role outside
``FULL_NUMBER_ROLES`` sees numbers masked and may search only by a full number, since searching by part
of one rebuilds a masked number a digit at a time (``1380…``, ``1381…``). The agent who handled a call
sees its number in full (the handling context).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Agent, Call
from callcenter.services import call_search
from callcenter.services.call_search import NumberPattern
from web.presenters import FULL_NUMBER_ROLES


def may_search_partial_numbers() -> bool:
    """A partial number reveals the digits a mask hides: need-to-know roles only."""
    return bool(current_user.has_role(*FULL_NUMBER_ROLES))


@dataclass(frozen=True)
class NumberSearch:
    """What a number field asks for: nothing, a pattern, or the problem to show under the field."""

    pattern: NumberPattern | None = None
    error: str | None = None


def read_number_search(text: str | None, region: str) -> NumberSearch:
    """A full number in any usual form, or (for roles allowed to) three or more of its digits."""
    if not text or not text.strip():
        return NumberSearch()
    pattern = call_search.number_pattern(text, region)
    if pattern is None:
        return NumberSearch(error=_("Enter a phone number, or at least three of its digits."))
    if pattern.exact is None and not may_search_partial_numbers():
        return NumberSearch(error=_("Enter the full number: your role may not search by part of one."))
    return NumberSearch(pattern=pattern)


def handled_by_viewer(session: Session, call_id: int) -> bool:
    """Whether the signed-in user is the agent who handled the call."""
    query = select(Agent.user_id).join(Call, Call.agent_id == Agent.id).where(Call.id == call_id)
    return bool(session.execute(query).scalar_one_or_none() == current_user.id)


def sees_call_numbers(session: Session, call_id: int) -> bool:
    """Full numbers of this call: need-to-know roles, and the agent who handled it."""
    return bool(current_user.has_role(*FULL_NUMBER_ROLES)) or handled_by_viewer(session, call_id)
