"""Recording files as Asterisk writes them, and calls with recordings on the contact record."""

from __future__ import annotations

import struct
import wave
from datetime import datetime
from pathlib import Path

from sqlalchemy import update

from callcenter.db import Database
from callcenter.models import Call
from callcenter.services import recordings
from callcenter.services.calls import CallSeen, Entry, record_call


def pcm_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """16-bit mono PCM, as MixMonitor writes ``.wav``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x01\x00" * int(seconds * rate))
    return path


def wav49(path: Path, blocks: int, *, data_size: int | None = None) -> Path:
    """GSM 06.10 in RIFF (format tag 0x31), as Asterisk's wav49 format writes ``.WAV``.

    65-byte blocks of 320 samples: 1625 bytes per second, so each block is 40 ms.
    """
    data = bytes(range(65)) * blocks
    fmt = struct.pack("<HHIIHHHH", 0x31, 1, 8000, 1625, 65, 0, 2, 320)
    fact = struct.pack("<I", 320 * blocks)
    size = len(data) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", 4)
        + fact
        + b"data"
        + struct.pack("<I", size)
        + data
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def call_with_recording(
    db: Database,
    at: datetime,
    path: str,
    *,
    linkedid: str = "1795424087.4",
    kind: str = "call",
    answered: datetime | None = None,
    ended: datetime | None = None,
    talk_s: int | None = None,
) -> int:
    """A call whose timeline names one recording (the row is created pending); returns the call id."""
    seen = CallSeen(channel="asterisk", external_id=linkedid, at=at, from_raw="13800138000")
    entry = Entry(
        key=f"ami:{linkedid}:mixmonitor:{path}",
        kind=recordings.STARTED,
        at=at,
        source="ami",
        data=recordings.started(path, kind=kind),
    )
    with db.transaction() as session:
        call = record_call(session, seen, [entry], region="CN", now=at)
        call_id = call.id
        session.execute(
            update(Call).where(Call.id == call_id).values(answered_at=answered, ended_at=ended, talk_s=talk_s)
        )
    return call_id
