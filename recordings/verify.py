"""Verify Asterisk recordings: does the file MixMonitor/Record() named exist, and what does it hold?

A ``pending`` recording is checked only once its call has ended (``Call.ended_at``: the caller's side
hung up) and ``Policy.delay`` has passed since (MixMonitor closes the file at that hang-up): a file
that is still being written is never judged. A call whose hang-up was never recorded keeps its
recordings pending (``recordings reconcile`` lists them). The check ends in one of:

``verified``  the file is there: size, duration (from the WAV header), sha256 are stored
``empty``     the file holds no audio: the 44-byte header MixMonitor's ``b`` option leaves for a call
              that was never bridged (not verified, not an error; reconcile lists it when the call
              was answered)
``missing``   no such file in the monitor folder (``problem`` says so)
``invalid``   the file cannot be used: corrupt or unfinished header, a zero-byte .wav, a path
              leaving the folder

An ``invalid`` file is looked at again, ``Policy.recheck_tries`` times at most, after
``Policy.recheck_first`` and twice as long each time after (``next_check_at``); a file that recovered
(a copy finished, a share re-synced) then becomes ``verified``. ``check_attempts`` counts the reads.

Several processes may run this at once. Rows are claimed in a short transaction (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises the claim) by stamping
``verified_at`` with the claim time and setting the status to ``pending``; the files are read outside
any transaction; the result is written only if the row still carries that claim. A claim older than
``Policy.lease`` (a process died mid-batch) may be taken over.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Select, and_, or_, select, update

from callcenter.db import Database
from callcenter.models import Call, Recording
from callcenter.settings import Settings
from recordings.claims import claim_rows
from recordings.media import MediaCheck, MonitorFolderMissing, inspect, monitor_root

log = logging.getLogger(__name__)

SOURCE = "asterisk"
DEFAULT_LEASE = timedelta(minutes=10)
DEFAULT_BATCH = 200
NOT_ANSWERED = "the call was never answered (MixMonitor's b option records only while bridged)"


@dataclass(frozen=True)
class Policy:
    """When recordings are checked (the ``[recordings]`` settings, and the claim lease)."""

    delay: timedelta = timedelta(seconds=10)  # after the call ended
    recheck_tries: int = 5  # further looks at an invalid file
    recheck_first: timedelta = timedelta(minutes=5)  # the first of them; doubled for each next one
    lease: timedelta = DEFAULT_LEASE

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        rules = settings.recordings
        return cls(
            delay=timedelta(seconds=rules.verify_delay_s),
            recheck_tries=rules.recheck_tries,
            recheck_first=timedelta(minutes=rules.recheck_first_minutes),
        )

    def next_check(self, attempts: int, now: datetime) -> datetime | None:
        """When an invalid file read ``attempts`` times (this one included) is read again; None: never."""
        if attempts > self.recheck_tries:
            return None
        return now + self.recheck_first * (1 << max(attempts - 1, 0))


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Claimed:
    id: int
    uri: str
    answered: bool
    attempts: int  # reads before this one


@dataclass
class VerifyResult:
    claimed: int = 0
    verified: int = 0
    empty: int = 0
    missing: int = 0
    invalid: int = 0
    lost: int = 0  # checked, but another process took the row over before the result was written
    bytes: int = 0
    seconds: float = 0.0

    def add(self, other: VerifyResult) -> None:
        for name in ("claimed", "verified", "empty", "missing", "invalid", "lost", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds

    def __str__(self) -> str:
        return (
            f"checked {self.claimed}: verified {self.verified}, empty {self.empty}, "
            f"missing {self.missing}, invalid {self.invalid}"
            + (f", taken over {self.lost}" if self.lost else "")
        )


def due(
    now: datetime, policy: Policy = DEFAULT_POLICY, *, recheck_missing: bool = False
) -> Select[tuple[int, str, datetime | None, int]]:
    """The recordings due for a check, oldest first: only of calls that ended ``policy.delay`` ago."""
    pending = and_(
        Recording.status == "pending",
        or_(Recording.verified_at.is_(None), Recording.verified_at < now - policy.lease),
    )
    recheck = and_(Recording.status == "invalid", Recording.next_check_at <= now)
    # A missing file may turn up later (a share mounted late, a copy restored): check those again on
    # request, each once per run (a row checked in this run carries verified_at == now).
    missing = and_(
        Recording.status == "missing", or_(Recording.verified_at.is_(None), Recording.verified_at < now)
    )
    states = [pending, recheck, missing] if recheck_missing else [pending, recheck]
    return (
        select(Recording.id, Recording.uri, Call.answered_at, Recording.check_attempts)
        .join(Call, Call.id == Recording.call_id)
        .where(
            Recording.source == SOURCE,
            or_(*states),
            Call.ended_at.is_not(None),
            Call.ended_at <= now - policy.delay,
        )
        .order_by(Recording.id)
    )


def claim(
    db: Database,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
    *,
    batch: int = DEFAULT_BATCH,
    recheck_missing: bool = False,
) -> list[Claimed]:
    """Claim up to ``batch`` recordings that are due for a check; returns what was claimed."""
    query = due(now, policy, recheck_missing=recheck_missing).limit(batch)
    rows = claim_rows(db, query, status="pending", verified_at=now, next_check_at=None)
    return [Claimed(row.id, row.uri, row.answered_at is not None, row.check_attempts) for row in rows]


def verify(
    db: Database,
    monitor_dir: Path,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
    *,
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
            if session.execute(due(now, policy).limit(1)).first() is None:
                return VerifyResult()  # nothing to check: an absent folder is no problem yet
        raise
    result = VerifyResult()
    claimed = claim(db, now, policy, batch=batch, recheck_missing=recheck_missing)
    started = time.perf_counter()
    for item in claimed:
        check = inspect(root, item.uri)
        if check.status == "missing" and not item.answered:
            check = MediaCheck("missing", f"no file: {NOT_ANSWERED}")
        if _store(db, item, check, now, policy):
            setattr(result, check.status, getattr(result, check.status) + 1)
            result.bytes += check.size_bytes or 0
            if check.status in ("missing", "invalid") or (check.status == "empty" and item.answered):
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
    policy: Policy = DEFAULT_POLICY,
    *,
    batch: int = DEFAULT_BATCH,
    recheck_missing: bool = False,
    max_batches: int | None = None,
) -> VerifyResult:
    """Run ``verify`` batch after batch until nothing is due (or ``max_batches`` ran)."""
    total = VerifyResult()
    batches = 0
    while max_batches is None or batches < max_batches:
        result = verify(db, monitor_dir, now, policy, batch=batch, recheck_missing=recheck_missing)
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
        Policy.from_settings(settings),
        batch=batch,
        max_batches=max_batches,
        recheck_missing=recheck_missing,
    )


def _store(db: Database, item: Claimed, check: MediaCheck, now: datetime, policy: Policy) -> bool:
    attempts = item.attempts + 1
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
                check_attempts=attempts,
                next_check_at=policy.next_check(attempts, now) if check.status == "invalid" else None,
            )
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(changed, "rowcount", 0))
