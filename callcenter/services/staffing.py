"""Agents and queues as admins set them up: who answers which queue, on which extension.

An agent's ``extension`` is the Asterisk queue member interface (``PJSIP/1001``) and its
``twilio_identity`` the Twilio Client identity; both name the agent when the voice layers report who
answered (``services/members.py:agent_for_interface``), so each is unique. A queue's ``name`` is what the
dialplan's ``Queue()`` and Twilio's ``<Enqueue>`` use: it is fixed at creation. Every change is audited
(``admin.agent.*``, ``admin.queue.*``) with the fields' old and new values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callcenter.models import Agent, Queue, User
from callcenter.models.agent import SKILL_LEVELS
from callcenter.services.admin import Actor, AdminError, audit

EXTENSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_@.:+-]{0,31}$")
TWILIO_IDENTITY = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class AgentFields:
    name: str
    extension: str | None
    twilio_identity: str | None
    skill_level: str
    team: str
    queue_ids: frozenset[int]
    user_id: int | None
    active: bool = True


@dataclass(frozen=True)
class QueueFields:
    title_zh: str
    title_en: str
    agent_ids: frozenset[int]


def list_agents(session: Session) -> list[Agent]:
    query = select(Agent).options(selectinload(Agent.queues), selectinload(Agent.user)).order_by(Agent.name)
    return list(session.execute(query).scalars())


def list_queues(session: Session) -> list[Queue]:
    query = select(Queue).options(selectinload(Queue.agents)).order_by(Queue.name)
    return list(session.execute(query).scalars())


def get_agent(session: Session, agent_id: int) -> Agent:
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise AdminError("agent", "not_found")
    return agent


def get_queue(session: Session, queue_id: int) -> Queue:
    queue = session.get(Queue, queue_id)
    if queue is None:
        raise AdminError("queue", "not_found")
    return queue


def _taken(session: Session, column: Any, value: str | int | None, agent_id: int | None) -> bool:
    if value is None:
        return False
    query = select(Agent.id).where(column == value)
    if agent_id is not None:
        query = query.where(Agent.id != agent_id)
    return session.execute(query).first() is not None


def _check_agent(session: Session, fields: AgentFields, agent_id: int | None) -> None:
    if not fields.name.strip() or len(fields.name) > 64:
        raise AdminError("name", "length", max=64)
    if fields.extension is not None and not EXTENSION.match(fields.extension):
        raise AdminError("extension", "format")
    if fields.twilio_identity is not None and not TWILIO_IDENTITY.match(fields.twilio_identity):
        raise AdminError("twilio_identity", "format")
    if fields.skill_level not in SKILL_LEVELS:
        raise AdminError("skill_level", "unknown")
    if len(fields.team) > 64:
        raise AdminError("team", "length", max=64)
    if _taken(session, Agent.extension, fields.extension, agent_id):
        raise AdminError("extension", "taken")
    if _taken(session, Agent.twilio_identity, fields.twilio_identity, agent_id):
        raise AdminError("twilio_identity", "taken")
    if fields.user_id is not None:
        if session.get(User, fields.user_id) is None:
            raise AdminError("user_id", "not_found")
        if _taken(session, Agent.user_id, fields.user_id, agent_id):
            raise AdminError("user_id", "taken")


def _queues(session: Session, ids: frozenset[int]) -> list[Queue]:
    found = list(session.execute(select(Queue).where(Queue.id.in_(ids)).order_by(Queue.name)).scalars())
    if len(found) != len(ids):
        raise AdminError("queue_ids", "not_found")
    return found


def _agents(session: Session, ids: frozenset[int]) -> list[Agent]:
    found = list(session.execute(select(Agent).where(Agent.id.in_(ids)).order_by(Agent.name)).scalars())
    if len(found) != len(ids):
        raise AdminError("agent_ids", "not_found")
    return found


def _agent_values(agent: Agent) -> dict[str, Any]:
    return {
        "name": agent.name,
        "extension": agent.extension,
        "twilio_identity": agent.twilio_identity,
        "skill_level": agent.skill_level,
        "team": agent.team,
        "queues": sorted(queue.name for queue in agent.queues),
        "user_id": agent.user_id,
        "active": agent.active,
    }


def _apply_agent(session: Session, agent: Agent, fields: AgentFields) -> None:
    agent.name = fields.name.strip()
    agent.extension = fields.extension
    agent.twilio_identity = fields.twilio_identity
    agent.skill_level = fields.skill_level
    agent.team = fields.team.strip()
    agent.user_id = fields.user_id
    agent.active = fields.active
    agent.queues = _queues(session, fields.queue_ids)


def create_agent(session: Session, actor: Actor, fields: AgentFields, *, now: datetime) -> Agent:
    _check_agent(session, fields, None)
    agent = Agent(name=fields.name.strip(), created_at=now)
    _apply_agent(session, agent, fields)
    session.add(agent)
    session.flush()
    audit(session, actor, "admin.agent.create", "agent", agent.id, now=now, data=_agent_values(agent))
    return agent


def update_agent(
    session: Session, actor: Actor, agent_id: int, fields: AgentFields, *, now: datetime
) -> dict[str, list[Any]]:
    """Change an agent; returns (and audits) the changed fields as ``{field: [old, new]}``."""
    agent = get_agent(session, agent_id)
    _check_agent(session, fields, agent.id)
    before = _agent_values(agent)
    _apply_agent(session, agent, fields)
    session.flush()
    after = _agent_values(agent)
    changes = {name: [before[name], after[name]] for name in before if before[name] != after[name]}
    if changes:
        audit(session, actor, "admin.agent.update", "agent", agent.id, now=now, data={"changes": changes})
    return changes


def _check_queue(fields: QueueFields) -> None:
    for name in ("title_zh", "title_en"):
        if len(getattr(fields, name)) > 64:
            raise AdminError(name, "length", max=64)


def _queue_values(queue: Queue) -> dict[str, Any]:
    return {
        "title_zh": queue.title_zh,
        "title_en": queue.title_en,
        "agents": sorted(agent.id for agent in queue.agents),
    }


def create_queue(session: Session, actor: Actor, name: str, fields: QueueFields, *, now: datetime) -> Queue:
    name = name.strip()
    if not QUEUE_NAME.match(name):
        raise AdminError("name", "format")
    if session.execute(select(Queue.id).where(Queue.name == name)).first() is not None:
        raise AdminError("name", "taken")
    _check_queue(fields)
    queue = Queue(
        name=name, title_zh=fields.title_zh.strip(), title_en=fields.title_en.strip(), created_at=now
    )
    queue.agents = _agents(session, fields.agent_ids)
    session.add(queue)
    session.flush()
    audit(
        session,
        actor,
        "admin.queue.create",
        "queue",
        queue.id,
        now=now,
        data={"name": name, **_queue_values(queue)},
    )
    return queue


def update_queue(
    session: Session, actor: Actor, queue_id: int, fields: QueueFields, *, now: datetime
) -> dict[str, list[Any]]:
    """Change a queue's titles and agents; returns (and audits) the changes."""
    queue = get_queue(session, queue_id)
    _check_queue(fields)
    before = _queue_values(queue)
    queue.title_zh, queue.title_en = fields.title_zh.strip(), fields.title_en.strip()
    queue.agents = _agents(session, fields.agent_ids)
    session.flush()
    after = _queue_values(queue)
    changes = {name: [before[name], after[name]] for name in before if before[name] != after[name]}
    if changes:
        audit(
            session,
            actor,
            "admin.queue.update",
            "queue",
            queue.id,
            now=now,
            data={"name": queue.name, "changes": changes},
        )
    return changes
