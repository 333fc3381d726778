"""Recordings of a call: registered when the voice layer names the file, verified after the call.

A recording is keyed by (source, external_id): the MixMonitor/Record file name relative to the
monitor folder for Asterisk, the RecordingSid for Twilio. It is registered from a
``recording.started`` timeline entry, so replays and duplicated events never add a second row.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.models import Recording

if TYPE_CHECKING:
    from callcenter.models import Call
    from callcenter.services.calls import Entry

STARTED = "recording.started"
KINDS = ("call", "voicemail")


def relative_to_monitor(path: str, monitor_dir: str) -> str:
    """Asterisk names the file absolutely (MIXMONITOR_FILENAME) or relatively; we store it relative.

    ``monitor_dir`` is the folder as Asterisk sees it (e.g. /var/spool/asterisk/monitor). A path
    outside it, or one that climbs out with ``..``, is refused.
    """
    candidate = PurePosixPath(path)
    if candidate.is_absolute():
        root = PurePosixPath(monitor_dir)
        if not candidate.is_relative_to(root):
            raise ValueError(f"recording {path!r} is outside the monitor folder {monitor_dir!r}")
        candidate = candidate.relative_to(root)
    if not candidate.parts or ".." in candidate.parts:
        raise ValueError(f"recording path {path!r} is not a file under the monitor folder")
    return str(candidate)


def started(path: str, *, kind: str = "call") -> dict[str, str]:
    """The data of a ``recording.started`` entry; ``path`` relative to the monitor folder."""
    if kind not in KINDS:
        raise ValueError(f"unknown recording kind {kind!r}")
    return {"path": path, "recording_kind": kind}


def register_from_entry(session: Session, call: Call, entry: Entry, now: datetime) -> None:
    path = str(entry.data["path"])
    insert_ignoring_duplicates(
        session,
        Recording,
        [
            {
                "call_id": call.id,
                "source": call.channel,
                "external_id": path[:255],
                "kind": str(entry.data.get("recording_kind") or "call"),
                "uri": path,
                "status": "pending",
                "started_at": entry.at,
                "created_at": now,
            }
        ],
        ["source", "external_id"],
    )
