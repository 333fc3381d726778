"""Queue members as the voice layers name them, and the agents they are."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Agent


def agent_for_interface(session: Session, interface: str) -> int | None:
    """The agent whose extension names this queue member: ``PJSIP/1001``, ``Local/x@agents/n``, ``1001``.

    On Twilio the member is the agent's Client identity (``client:alice``) or phone number, both kept
    in ``Agent.twilio_identity``.
    """
    if interface.startswith("client:") or interface.startswith("+"):
        identity = interface.removeprefix("client:")
        query = select(Agent.id).where(Agent.twilio_identity == identity)
        return session.execute(query).scalar_one_or_none()
    bare = interface.removesuffix("/n")
    resource = bare.split("/", 1)[-1]
    candidates = list(dict.fromkeys([interface, bare, resource, resource.split("@", 1)[0]]))
    found = dict(
        session.execute(select(Agent.extension, Agent.id).where(Agent.extension.in_(candidates)))
        .tuples()
        .all()
    )
    return next((found[candidate] for candidate in candidates if candidate in found), None)
