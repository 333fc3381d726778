"""QA test data: agents, answered calls with recordings (rows written directly, as the voice layer
and the recording verifier would leave them), QA staff."""

from __future__ import annotations

import io
import itertools
import math
import struct
import wave
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.models import Agent, Call, Recording, User
from callcenter.services.users import create_user

_ids = itertools.count(1)


def make_agent(
    session: Session, name: str, *, team: str = "A", user: User | None = None, now: datetime
) -> Agent:
    agent = Agent(name=name, team=team, user=user, created_at=now)
    session.add(agent)
    session.flush()
    return agent


def make_recorded_call(
    session: Session,
    *,
    agent_id: int | None,
    queue: str,
    start: datetime,
    talk_s: int = 120,
    caller: str | None = "+8613800138000",
    statuses: tuple[str, ...] = ("verified",),
    uri: str = "",
    size: int | None = None,
) -> Call:
    """An answered call with one recording per status given (none: unrecorded)."""
    number = next(_ids)
    call = Call(
        channel="asterisk",
        external_id=f"qa.{number}",
        from_raw=caller or "anonymous",
        from_e164=caller,
        created_at=start,
        started_at=start,
        answered_at=start + timedelta(seconds=5),
        ended_at=start + timedelta(seconds=5 + talk_s),
        queue_name=queue,
        agent_id=agent_id,
        talk_s=talk_s,
        disposition="completed",
    )
    session.add(call)
    session.flush()
    for index, status in enumerate(statuses):
        session.add(
            Recording(
                call_id=call.id,
                source="asterisk",
                external_id=f"/var/spool/asterisk/monitor/qa-{number}-{index}.wav",
                kind="call",
                uri=uri or f"qa-{number}-{index}.wav",
                status=status,
                duration_s=float(talk_s),
                size_bytes=size,
                started_at=start,
                created_at=start,
            )
        )
    session.flush()
    return call


def make_staff(db: Database, now: datetime, username: str, roles: tuple[str, ...], password: str) -> int:
    with db.transaction() as session:
        return create_user(session, username, password, roles, now=now).id


def wav_bytes(seconds: float = 3.0, rate: int = 8000) -> bytes:
    """A real 8 kHz mono 16-bit WAV: a 440 Hz tone."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def write_wav(folder: Path, name: str, seconds: float = 3.0) -> int:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    data = wav_bytes(seconds)
    (folder / name).write_bytes(data)
    return len(data)
