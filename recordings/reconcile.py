"""Reconcile the monitor folder with the contact record: what is recorded but unknown, known but absent.

Problems reported:

* orphans: files under the monitor folder that no recording row names (the AMI event announcing them
  was lost, or the file is not ours); files changed within ``settle`` are left out (still being
  written, or their row not written yet);
* answered calls with no recording at all (answered more than ``settle`` ago);
* answered calls whose recordings are all checked (``verified`` or ``empty``) but hold no audio, or
  last less than ``talk_s × short_ratio − short_tolerance_s`` (the agent talked, the file did not
  keep it); calls never answered whose recording is ``empty`` are expected (MixMonitor's ``b``
  option leaves a header-only file until the caller is bridged) and only counted;
* recordings marked ``missing``, except those of calls that were never answered, which are only
  counted;
* recordings marked ``invalid`` (those still to be looked at again, and those given up on);
* recordings still ``pending`` of a call that started more than ``stale`` ago and never ended (its
  hang-up was never recorded, so the recording is never checked).

Lists are capped at ``limit`` entries each; the counts are complete.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.models import Call, Recording
from recordings.media import monitor_root

SOURCE = "asterisk"
DEFAULT_SETTLE = timedelta(minutes=10)
DEFAULT_STALE = timedelta(hours=4)
DEFAULT_SHORT_RATIO = 0.5
DEFAULT_SHORT_TOLERANCE_S = 5.0
NOT_ENDED = "the call never ended (its hang-up was not recorded): the recording is not checked"
DEFAULT_LIMIT = 100
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class UnrecordedCall:
    call_id: int
    external_id: str
    answered_at: datetime


@dataclass(frozen=True)
class ShortRecording:
    """An answered call whose checked recordings hold no audio, or far less than its talk time."""

    call_id: int
    external_id: str
    talk_s: int | None
    recorded_s: float


@dataclass(frozen=True)
class ShortRule:
    """``recorded_s < talk_s × ratio − tolerance_s`` is too short (no audio at all always is)."""

    ratio: float = DEFAULT_SHORT_RATIO
    tolerance_s: float = DEFAULT_SHORT_TOLERANCE_S


DEFAULT_SHORT_RULE = ShortRule()


@dataclass(frozen=True)
class BadRecording:
    recording_id: int
    call_id: int
    uri: str
    status: str
    problem: str | None


@dataclass
class ReconcileReport:
    orphans: list[str] = field(default_factory=list)
    orphan_count: int = 0
    unrecorded_calls: list[UnrecordedCall] = field(default_factory=list)
    unrecorded_count: int = 0
    short: list[ShortRecording] = field(default_factory=list)
    short_count: int = 0
    empty_unanswered: int = 0  # expected: a header-only file for a call never bridged
    missing: list[BadRecording] = field(default_factory=list)
    missing_count: int = 0
    missing_unanswered: int = 0  # expected: nothing is recorded before an agent answers
    invalid: list[BadRecording] = field(default_factory=list)
    invalid_count: int = 0
    not_ended: list[BadRecording] = field(default_factory=list)
    not_ended_count: int = 0
    pending: int = 0  # not checked yet (informational; includes those of not_ended)

    @property
    def problems(self) -> int:
        return (
            self.orphan_count
            + self.unrecorded_count
            + self.short_count
            + self.missing_count
            + self.invalid_count
            + self.not_ended_count
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for call in data["unrecorded_calls"]:
            call["answered_at"] = call["answered_at"].isoformat()
        data["problems"] = self.problems
        return data


def reconcile(
    db: Database,
    monitor_dir: Path,
    now: datetime,
    *,
    since: datetime | None = None,
    settle: timedelta = DEFAULT_SETTLE,
    stale: timedelta = DEFAULT_STALE,
    short: ShortRule = DEFAULT_SHORT_RULE,
    limit: int = DEFAULT_LIMIT,
) -> ReconcileReport:
    """Compare the monitor folder and the recording rows. ``since`` limits the call checks to calls
    that started then or later (the folder is always walked whole)."""
    root = monitor_root(monitor_dir)
    report = ReconcileReport()
    with db.read() as session:
        _orphans(session, root, now - settle, report, limit)
        _unrecorded(session, now - settle, since, report, limit)
        _short(session, since, short, report, limit)
        _bad(session, since, report, limit)
        _not_ended(session, now - stale, since, report, limit)
    return report


def _files(root: Path, settled_before: datetime) -> list[str]:
    """Relative paths of the regular files under ``root`` last changed before ``settled_before``.

    Symlinks are not followed; hidden files and folders (a copy in progress) are skipped.
    """
    cutoff = settled_before.timestamp()
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if path.is_symlink() or not path.is_file() or info.st_mtime >= cutoff:
                continue
            found.append(path.relative_to(root).as_posix())
    return found


def _orphans(
    session: Session, root: Path, settled_before: datetime, report: ReconcileReport, limit: int
) -> None:
    files = _files(root, settled_before)
    for start in range(0, len(files), LOOKUP_CHUNK):
        chunk = files[start : start + LOOKUP_CHUNK]
        # external_id is the path (cut to 255 characters) and carries the unique index: look up by it.
        known = set(
            session.scalars(
                select(Recording.uri).where(
                    Recording.source == SOURCE, Recording.external_id.in_({path[:255] for path in chunk})
                )
            )
        )
        for path in chunk:
            if path not in known:
                report.orphan_count += 1
                if len(report.orphans) < limit:
                    report.orphans.append(path)


def _unrecorded(
    session: Session, answered_before: datetime, since: datetime | None, report: ReconcileReport, limit: int
) -> None:
    conditions: list[ColumnElement[bool]] = [
        Call.channel == SOURCE,
        Call.answered_at.is_not(None),
        Call.answered_at < answered_before,
        ~exists().where(Recording.call_id == Call.id),
    ]
    if since is not None:
        conditions.append(Call.started_at >= since)
    report.unrecorded_count = session.scalar(select(func.count()).select_from(Call).where(*conditions)) or 0
    rows = session.execute(
        select(Call.id, Call.external_id, Call.answered_at).where(*conditions).order_by(Call.id).limit(limit)
    )
    report.unrecorded_calls = [UnrecordedCall(row.id, row.external_id, row.answered_at) for row in rows]


def _short(
    session: Session, since: datetime | None, rule: ShortRule, report: ReconcileReport, limit: int
) -> None:
    """Answered calls whose call recordings are all checked and hold no audio or too little of it."""
    recorded = func.coalesce(func.sum(Recording.duration_s), 0.0)
    checked = and_(Recording.status.in_(("verified", "empty")), Recording.duration_s.is_not(None))
    unchecked = func.sum(case((checked, 0), else_=1))
    conditions: list[ColumnElement[bool]] = [Call.channel == SOURCE, Call.answered_at.is_not(None)]
    if since is not None:
        conditions.append(Call.started_at >= since)
    query = (
        select(Call.id, Call.external_id, Call.talk_s, recorded.label("recorded_s"))
        .join(
            Recording,
            and_(Recording.call_id == Call.id, Recording.source == SOURCE, Recording.kind == "call"),
        )
        .where(*conditions)
        .group_by(Call.id, Call.external_id, Call.talk_s)
        .having(
            unchecked == 0,  # pending, missing and invalid files are reported as such
            or_(
                recorded <= 0,
                and_(Call.talk_s.is_not(None), recorded < Call.talk_s * rule.ratio - rule.tolerance_s),
            ),
        )
    )
    report.short_count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Call.id).limit(limit))
    report.short = [
        ShortRecording(row.id, row.external_id, row.talk_s, round(float(row.recorded_s), 3)) for row in rows
    ]


def _bad(session: Session, since: datetime | None, report: ReconcileReport, limit: int) -> None:
    base: list[ColumnElement[bool]] = [Recording.source == SOURCE]
    if since is not None:
        base.append(Call.started_at >= since)
    expected = and_(Recording.kind == "call", Call.answered_at.is_(None), Call.ended_at.is_not(None))
    groups: list[tuple[str, ColumnElement[bool]]] = [
        ("missing", and_(Recording.status == "missing", ~expected)),
        ("invalid", Recording.status == "invalid"),
    ]
    for status, condition in groups:
        query = select(Recording).join(Call, Call.id == Recording.call_id).where(*base, condition)
        count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(Recording.id).limit(limit))
        found = [BadRecording(rec.id, rec.call_id, rec.uri, rec.status, rec.problem) for rec in rows]
        if status == "missing":
            report.missing, report.missing_count = found, count
        else:
            report.invalid, report.invalid_count = found, count
    counted = select(Recording.status, func.count()).join(Call, Call.id == Recording.call_id)
    waiting = or_(
        Recording.status == "pending",
        and_(Recording.status == "missing", expected),
        and_(Recording.status == "empty", Call.answered_at.is_(None)),
    )
    by_status: dict[str, int] = {
        status: count
        for status, count in session.execute(
            counted.where(*base, waiting).group_by(Recording.status)
        ).tuples()
    }
    report.pending = by_status.get("pending", 0)
    report.missing_unanswered = by_status.get("missing", 0)
    report.empty_unanswered = by_status.get("empty", 0)


def _not_ended(
    session: Session, started_before: datetime, since: datetime | None, report: ReconcileReport, limit: int
) -> None:
    """Pending recordings of calls that started long ago and never ended: they are never checked."""
    conditions: list[ColumnElement[bool]] = [
        Recording.source == SOURCE,
        Recording.status == "pending",
        Call.ended_at.is_(None),
        func.coalesce(Recording.started_at, Recording.created_at) < started_before,
    ]
    if since is not None:
        conditions.append(Call.started_at >= since)
    query = select(Recording.id, Recording.call_id, Recording.uri).join(Call, Call.id == Recording.call_id)
    query = query.where(*conditions)
    report.not_ended_count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Recording.id).limit(limit))
    report.not_ended = [BadRecording(row.id, row.call_id, row.uri, "pending", NOT_ENDED) for row in rows]
