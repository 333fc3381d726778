"""Recording call reports so that nothing is lost when the database is down.

``Recorder.record`` writes a report in one short transaction. If the database cannot be reached the
report goes to the spool folder (one JSON file each, written atomically) and ``replay`` applies the
spooled reports later; because ``record_call`` is idempotent, a report applied twice changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from callcenter.db import Database
from callcenter.services.calls import CallSeen, Entry, from_payload, record_call, to_payload
from callcenter.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Spool:
    """A folder of pending reports; safe for several processes (atomic rename, delete on success)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, payload: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex}.json"  # noqa: DTZ005 - file order only
        temporary = self.folder / f".{name}.tmp"
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        final = self.folder / name
        temporary.rename(final)
        return final

    def pending(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.json"))


@dataclass(frozen=True)
class ReplayResult:
    applied: int
    failed: int
    remaining: int


class Recorder:
    """The voice layer's write path: database first, spool on outage."""

    def __init__(self, db: Database, spool: Spool, *, region: str, clock: Clock) -> None:
        self.db = db
        self.spool = spool
        self.region = region
        self.clock = clock

    def record(self, seen: CallSeen, entries: Sequence[Entry]) -> int | None:
        """Store the report; returns the call's id, or None if it had to be spooled."""
        try:
            with self.db.transaction() as session:
                return record_call(session, seen, entries, region=self.region, now=self.clock()).id
        except (OperationalError, DBAPIError) as exc:
            path = self.spool.put(to_payload(seen, entries))
            log.error(
                "database unavailable, call %s/%s spooled to %s: %s",
                seen.channel,
                seen.external_id,
                path.name,
                exc.__class__.__name__,
            )
            return None

    @staticmethod
    def _set_aside(path: Path, suffix: str, exc: Exception) -> None:
        try:
            path.rename(path.with_suffix(suffix))
        except FileNotFoundError:
            return
        log.error(
            "spooled report %s cannot be applied (%s); kept as %s",
            path.name,
            exc,
            path.with_suffix(suffix).name,
        )

    def replay(self) -> ReplayResult:
        """Apply spooled reports in order; stop at the first database failure (try again later)."""
        applied = failed = 0
        pending = self.spool.pending()
        for index, path in enumerate(pending):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
                seen, entries = from_payload(payload)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                failed += 1
                self._set_aside(path, ".bad", exc)
                continue
            try:
                with self.db.transaction() as session:
                    record_call(session, seen, entries, region=self.region, now=self.clock())
            except (OperationalError, InterfaceError) as exc:
                log.warning("replay stopped, database still unavailable: %s", exc.__class__.__name__)
                return ReplayResult(applied, failed, len(pending) - index)
            except DBAPIError as exc:  # the database answers but refuses this report: set it aside
                failed += 1
                self._set_aside(path, ".failed", exc)
                continue
            path.unlink(missing_ok=True)  # another replayer may have finished it first
            applied += 1
            log.info("replayed spooled report for call %s/%s", seen.channel, seen.external_id)
        return ReplayResult(applied, failed, 0)


def recorder_for(settings: Settings, db: Database, clock: Clock) -> Recorder:
    """The recorder every process uses: the configured spool folder and phone region."""
    spool = Spool(settings.path(settings.storage.spool_dir))
    return Recorder(db, spool, region=settings.organisation.phone_region, clock=clock)
