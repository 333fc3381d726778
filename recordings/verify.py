"""Verify Asterisk recordings: does the file MixMonitor/Record() named exist, and what does it hold?

A ``pending`` recording is checked once its call has ended, or once it started more than ``grace``
ago (the hang-up may never have been reported). The check ends in one of:

``verified``  the file is there: size, duration (from the WAV header), sha256 are stored
``missing``   no such file in the monitor folder (``problem`` says so; for a call that was never
              answered this is expected: MixMonitor's ``b`` option records only while bridged)
``invalid``   the file cannot be used: corrupt or unfinished header, empty, a path leaving the folder

Several processes may run this at once. Rows are claimed in a short transaction (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises the claim) by stamping
``verified_at`` with the claim time while the status stays ``pending``; the files are read outside
any transaction; the result is written only if the row still carries that claim. A claim older than
``lease`` (a process died mid-batch) may be taken over.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Select, and_, func, or_, select, update

from callcenter.db import Database
from callcenter.models import Call, Recording
from callcenter.settings import Settings
from recordings.claims import claim_rows
from recordings.media import MediaCheck, MonitorFolderMissing, inspect, monitor_root

log = logging.getLogger(__name__)

SOURCE = "asterisk"
DEFAULT_GRACE = timedelta(hours=4)
DEFAULT_LEASE = timedelta(minutes=10)
DEFAULT_BATCH = 200
NOT_ANSWERED = "the call was never answered (MixMonitor's b option records only while bridged)"


@dataclass(frozen=True)
class Claimed:
    id: int
    uri: str
    answered: bool
    ended: bool


@dataclass
class VerifyResult:
    claimed: int = 0
    verified: int = 0
    missing: int = 0
    invalid: int = 0
    lost: int = 0  # checked, but another process took the row over before the result was written
    bytes: int = 0
    seconds: float = 0.0

    def add(self, other: VerifyResult) -> None:
        for name in ("claimed", "verified", "missing", "invalid", "lost", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds

    def __str__(self) -> str:
        return (
            f"checked {self.claimed}: verified {self.verified}, missing {self.missing}, "
            f"invalid {self.invalid}" + (f", taken over {self.lost}" if self.lost else "")
        )


def due(
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    lease: timedelta = DEFAULT_LEASE,
    recheck_missing: bool = False,
) -> Select[tuple[int, str, datetime | None, datetime | None]]:
    """The recordings due for a check, oldest first."""
    pending = and_(
        Recording.status == "pending",
        or_(Recording.verified_at.is_(None), Recording.verified_at < now - lease),
    )
    # A missing file may turn up later (a share mounted late, a copy restored): check those again on
    # request, each once per run (a row checked in this run carries verified_at == now).
    missing = and_(
        Recording.status == "missing", or_(Recording.verified_at.is_(None), Recording.verified_at < now)
    )
    return (
        select(Recording.id, Recording.uri, Call.answered_at, Call.ended_at)
        .join(Call, Call.id == Recording.call_id)
        .where(
            Recording.source == SOURCE,
            or_(pending, missing) if recheck_missing else pending,
            or_(
                Call.ended_at.is_not(None),
                func.coalesce(Recording.started_at, Recording.created_at) < now - grace,
            ),
        )
        .order_by(Recording.id)
    )


def claim(
    db: Database,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    lease: timedelta = DEFAULT_LEASE,
    batch: int = DEFAULT_BATCH,
    recheck_missing: bool = False,
) -> list[Claimed]:
    """Claim up to ``batch`` recordings that are due for a check; returns what was claimed."""
    query = due(now, grace=grace, lease=lease, recheck_missing=recheck_missing).limit(batch)
    rows = claim_rows(db, query, status="pending", verified_at=now)
    return [Claimed(row.id, row.uri, row.answered_at is not None, row.ended_at is not None) for row in rows]


def verify(
    db: Database,
    monitor_dir: Path,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    lease: timedelta = DEFAULT_LEASE,
    batch: int = DEFAULT_BATCH,
    recheck_missing: bool = False,
) -> VerifyResult:
    """Check one batch of due recordings.

    If the monitor folder is absent, nothing is changed (an unmounted share must not mark every
    recording missing): MonitorFolderMissing is raised when recordings are waiting for it.
    """
    try:
        root = monitor_root(monitor_dir)
    except MonitorFolderMissing:
        with db.read() as session:
            if session.execute(due(now, grace=grace, lease=lease).limit(1)).first() is None:
                return VerifyResult()  # nothing to check: an absent folder is no problem yet
        raise
    result = VerifyResult()
    claimed = claim(db, now, grace=grace, lease=lease, batch=batch, recheck_missing=recheck_missing)
    started = time.perf_counter()
    for item in claimed:
        check = inspect(root, item.uri)
        if check.status == "missing" and item.ended and not item.answered:
            check = MediaCheck("missing", f"no file: {NOT_ANSWERED}")
        if _store(db, item, check, now):
            setattr(result, check.status, getattr(result, check.status) + 1)
            result.bytes += check.size_bytes or 0
            if check.status != "verified":
                log.warning("recording %s (%s): %s: %s", item.id, item.uri, check.status, check.problem)
        else:
            result.lost += 1
    result.claimed = len(claimed)
    result.seconds = time.perf_counter() - started
    return result


def verify_all(
    db: Database,
    monitor_dir: Path,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    lease: timedelta = DEFAULT_LEASE,
    batch: int = DEFAULT_BATCH,
    recheck_missing: bool = False,
    max_batches: int | None = None,
) -> VerifyResult:
    """Run ``verify`` batch after batch until nothing is due (or ``max_batches`` ran)."""
    total = VerifyResult()
    batches = 0
    while max_batches is None or batches < max_batches:
        result = verify(
            db, monitor_dir, now, grace=grace, lease=lease, batch=batch, recheck_missing=recheck_missing
        )
        total.add(result)
        batches += 1
        if result.claimed < batch:
            break
    return total


def verify_recordings(
    settings: Settings,
    db: Database,
    now: datetime,
    *,
    batch: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    recheck_missing: bool = False,
) -> VerifyResult:
    """``verify_all`` on the configured monitor folder (what the scheduler job and the CLI run)."""
    return verify_all(
        db,
        settings.path(settings.storage.monitor_dir),
        now,
        batch=batch,
        max_batches=max_batches,
        recheck_missing=recheck_missing,
    )


def _store(db: Database, item: Claimed, check: MediaCheck, now: datetime) -> bool:
    with db.transaction() as session:
        changed = session.execute(
            update(Recording)
            .where(Recording.id == item.id, Recording.status == "pending", Recording.verified_at == now)
            .values(
                status=check.status,
                problem=check.problem[:255] if check.problem else None,
                size_bytes=check.size_bytes,
                duration_s=check.duration_s,
                sha256=check.sha256,
                verified_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(changed, "rowcount", 0))
