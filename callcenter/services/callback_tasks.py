"""Who works a callback task (D41, F62): the roles that take callback tasks, who may open a task,
and the leaders' audited reassignment.

A campaign task belongs to the agent it was allocated to (``campaign_member.agent_id``); it opens for
that agent's account (while it holds one of the callback roles), for team leaders and for
supervisors. A task with no owner (an owed callback: missed call, after hours, a promised reply; a
survey member) opens for every holder of a callback role and for the leaders. The callback roles are
the setting ``[dialler] callback_roles`` (default ``callback_specialist``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Agent, CallbackResult, CallbackTask, CampaignMember, User, UserRole
from callcenter.services.admin import Actor, audit

LEADER_ROLES = ("team_leader", "supervisor")
DEFAULT_OWNER_ROLES = ("callback_specialist",)
REASSIGN = "callback.reassign"


class TaskAccessError(ValueError):
    """A task action the user may not take, or one that cannot be done (the message says why)."""


@dataclass(frozen=True)
class Owner:
    agent_id: int
    name: str
    user_id: int | None


def entitled_agents(session: Session, owner_roles: Iterable[str]) -> list[Agent]:
    """Active agents whose active account holds one of ``owner_roles``: who may be allocated tasks."""
    holders = select(UserRole.user_id).where(UserRole.role.in_(tuple(owner_roles)))
    query = (
        select(Agent)
        .join(User, User.id == Agent.user_id)
        .where(Agent.active.is_(True), User.active.is_(True), User.id.in_(holders))
        .order_by(Agent.name, Agent.id)
    )
    return list(session.execute(query).scalars())


def refused_agents(session: Session, agent_ids: Iterable[int], owner_roles: Iterable[str]) -> list[str]:
    """The names (or ids) of chosen agents who may not take callback tasks."""
    chosen = set(agent_ids)
    allowed = {agent.id for agent in entitled_agents(session, owner_roles)}
    refused = sorted(chosen - allowed)
    if not refused:
        return []
    rows = session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(refused))).tuples()
    names = {agent_id: name for agent_id, name in rows}
    return [names.get(agent_id) or f"#{agent_id}" for agent_id in refused]


def owner(session: Session, task_id: int) -> Owner | None:
    """The agent a campaign task is allocated to, if any."""
    row = session.execute(
        select(Agent.id, Agent.name, Agent.user_id)
        .join(CampaignMember, CampaignMember.agent_id == Agent.id)
        .where(CampaignMember.task_id == task_id)
    ).first()
    return None if row is None else Owner(row[0], row[1], row[2])


def may_work_callbacks(user: User, owner_roles: Iterable[str]) -> bool:
    """Whether the user may reach callback tasks at all (before looking at a task)."""
    return user.has_role(*LEADER_ROLES, *owner_roles)


def can_open(session: Session, user: User, task_id: int, owner_roles: Iterable[str]) -> bool:
    """A task opens for its owner, team leaders and supervisors; an unowned one for the callback roles."""
    roles = tuple(owner_roles)
    if user.has_role(*LEADER_ROLES):
        return True
    if not user.has_role(*roles):
        return False
    allocated = owner(session, task_id)
    return allocated is None or allocated.user_id == user.id


def reassign(
    session: Session,
    task_id: int,
    agent_id: int,
    *,
    actor: User,
    reason: str,
    now: datetime,
    owner_roles: Iterable[str],
    remote_addr: str = "",
) -> CampaignMember:
    """A leader gives a campaign task to another entitled agent (F62); audited with the reason."""
    if not actor.has_role(*LEADER_ROLES):
        raise TaskAccessError("only team leaders and supervisors reassign callback tasks")
    reason = reason.strip()
    if not reason:
        raise TaskAccessError("give a reason for the reassignment")
    member = session.execute(
        select(CampaignMember).where(CampaignMember.task_id == task_id).with_for_update()
    ).scalar_one_or_none()
    if member is None:
        raise TaskAccessError("only campaign tasks have an owner; owed callbacks are open to all specialists")
    task = session.get(CallbackTask, task_id)
    if task is None or task.status == "cancelled":
        raise TaskAccessError("this task is cancelled")
    if session.execute(select(CallbackResult.id).where(CallbackResult.task_id == task_id)).first():
        raise TaskAccessError("this callback's result is already recorded")
    if refused_agents(session, [agent_id], owner_roles):
        raise TaskAccessError("that agent does not take callback tasks")
    if member.agent_id == agent_id:
        raise TaskAccessError("the task is already allocated to that agent")
    previous = member.agent_id
    member.agent_id = agent_id
    task.updated_at = now
    audit(
        session,
        Actor(actor.id, actor.username, remote_addr),
        REASSIGN,
        "callback_task",
        task_id,
        now=now,
        data={"from_agent": previous, "to_agent": agent_id},
        reason=reason[:1000],
    )
    return member
