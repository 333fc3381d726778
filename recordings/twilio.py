"""Twilio recordings: download into our store, verify, and optionally delete them from Twilio.

A recording becomes due once its status callback is on the call's timeline (the ``recording.started``
entry ``twilio:<CallSid>:recording:<RecordingSid>``, which carries Twilio's duration and channel
count): the Recording row (source ``twilio``, external id the RecordingSid) is then ``pending``.
Each run claims due rows (as ``recordings/verify.py`` does: ``verified_at`` stamped with the claim
time, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), downloads each file with the account's credentials
(``.wav``; ``RequestedChannels=2`` for a dual-channel recording) into
``storage.recordings_dir/twilio/<YYYY-MM>/<RecordingSid>.wav``, retrying with exponential backoff,
and checks it: the size against ``Content-Length``, the WAV header, the duration against Twilio's
(± ``DURATION_TOLERANCE_S``), the channels; the sha256 is stored. Then:

``verified``  our copy is good: ``uri`` names it; if ``twilio.delete_after_download`` the recording is
              deleted from Twilio through the REST client
``invalid``   the file came but is unusable (``problem`` says why); it is kept at Twilio
``pending``   the download failed after every retry (``problem`` says why); tried again after the lease
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import and_, literal, or_, select, update

from callcenter.audio import read_wav_info
from callcenter.db import Database
from callcenter.models import Call, CallEvent, Recording
from callcenter.settings import Settings
from callcenter.voice.twilio.rest import api_base, credentials, make_client
from recordings.claims import claim_rows
from recordings.media import MediaCheck, inspect

log = logging.getLogger(__name__)

SOURCE = "twilio"
FOLDER = "twilio"
# Twilio's RecordingSid: "RE" and 32 hex digits. It names our file, so nothing else is accepted.
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
DEFAULT_LEASE = timedelta(minutes=10)
DEFAULT_BATCH = 50
DURATION_TOLERANCE_S = 2.0
BACKOFF_S = 1.0  # first retry after 1 s, then 2, 4, …
MAX_BACKOFF_S = 30.0
DOWNLOAD_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 16
# Answers worth retrying: Twilio answers 404 for a moment after the callback, before the file is ready.
RETRY_STATUSES = frozenset({404, 408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Due:
    id: int
    sid: str
    claimed_at: datetime
    started_at: datetime | None
    duration_s: int | None
    channels: int


@dataclass
class FetchResult:
    claimed: int = 0
    verified: int = 0
    invalid: int = 0
    failed: int = 0
    deleted: int = 0
    lost: int = 0

    def __str__(self) -> str:
        return (
            f"fetched {self.claimed}: verified {self.verified}, invalid {self.invalid}, "
            f"failed {self.failed}, deleted at Twilio {self.deleted}"
        )


class DownloadError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class TwilioMedia:
    """Fetches recording files from Twilio's API with the account's credentials."""

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        *,
        session: requests.Session | None = None,
        timeout_s: float = DOWNLOAD_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self.auth = (account_sid, auth_token)
        self.session = session or requests.Session()
        self.timeout_s = timeout_s

    def url(self, sid: str, channels: int) -> str:
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}.wav"
        return url + ("?RequestedChannels=2" if channels == 2 else "")

    def download(self, sid: str, channels: int, target: Path) -> tuple[int, str]:
        """Write the file to ``target``; returns (size, sha256). Raises DownloadError."""
        try:
            response = self.session.get(
                self.url(sid, channels), auth=self.auth, stream=True, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise DownloadError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        with response:
            if response.status_code != 200:
                raise DownloadError(
                    f"HTTP {response.status_code}", retryable=response.status_code in RETRY_STATUSES
                )
            digest, size = hashlib.sha256(), 0
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with target.open("wb") as handle:
                    for chunk in response.iter_content(CHUNK_BYTES):
                        handle.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            except requests.RequestException as exc:
                raise DownloadError(f"interrupted: {exc}", retryable=True) from exc
        expected = response.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise DownloadError(f"got {size} bytes of {expected}", retryable=True)
        return size, digest.hexdigest()


def _callback_key() -> Any:
    return literal("twilio:") + Call.external_id + literal(":recording:") + Recording.external_id


def claim(
    db: Database, now: datetime, *, lease: timedelta = DEFAULT_LEASE, batch: int = DEFAULT_BATCH
) -> list[Due]:
    """Claim up to ``batch`` pending Twilio recordings whose status callback has arrived."""
    query = (
        select(Recording.id, Recording.external_id, Recording.started_at, CallEvent.data)
        .join(Call, Call.id == Recording.call_id)
        .join(CallEvent, and_(CallEvent.call_id == Call.id, CallEvent.key == _callback_key()))
        .where(
            Recording.source == SOURCE,
            Recording.status == "pending",
            or_(Recording.verified_at.is_(None), Recording.verified_at < now - lease),
        )
        .order_by(Recording.id)
        .limit(batch)
    )
    rows = claim_rows(db, query, verified_at=now)
    due = []
    for row in rows:
        data = row.data or {}
        duration = data.get("duration_s")
        due.append(
            Due(
                row.id,
                row.external_id,
                now,
                row.started_at,
                int(duration) if duration is not None else None,
                int(data.get("channels") or 1),
            )
        )
    return due


def valid_recording_sid(sid: str) -> bool:
    return RECORDING_SID.fullmatch(sid) is not None


def relative_path(item: Due, now: datetime) -> str:
    moment = item.started_at or now
    return f"{FOLDER}/{moment:%Y-%m}/{item.sid}.wav"


def store_path(store: Path, item: Due, now: datetime) -> tuple[str, Path] | None:
    """Where the recording goes (its uri and file), or None if the sid is not Twilio's or the file
    would land outside the store: the webhook refuses such sids, and this keeps a row written by
    any other path from writing or deleting anything else."""
    if not valid_recording_sid(item.sid):
        return None
    uri = relative_path(item, now)
    root = store.resolve()
    target = (root / uri).resolve()
    return (uri, target) if target.is_relative_to(root) else None


def check_file(store: Path, uri: str, item: Due, sha256: str) -> MediaCheck:
    """Our copy against what Twilio said: WAV header, duration, channels, and the download's sha256."""
    check = inspect(store.resolve(), uri)
    if check.status != "verified":
        return check
    if check.sha256 != sha256:
        return MediaCheck(
            "invalid", "sha256 changed after the download", check.size_bytes, None, check.sha256
        )
    if check.duration_s is None:
        return MediaCheck("invalid", "no duration in the WAV header", check.size_bytes, None, check.sha256)
    with (store / uri).open("rb") as handle:
        channels = read_wav_info(handle, check.size_bytes or 0).channels
    if channels != item.channels:
        problem = f"{channels} channels, Twilio says {item.channels}"
        return MediaCheck("invalid", problem, check.size_bytes, check.duration_s, check.sha256)
    if item.duration_s is not None and abs(check.duration_s - item.duration_s) > DURATION_TOLERANCE_S:
        problem = f"duration {check.duration_s:.1f} s, Twilio says {item.duration_s} s"
        return MediaCheck("invalid", problem, check.size_bytes, check.duration_s, check.sha256)
    return check


def fetch(
    db: Database,
    media: TwilioMedia,
    store: Path,
    now: datetime,
    *,
    retries: int,
    delete: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    batch: int = DEFAULT_BATCH,
    lease: timedelta = DEFAULT_LEASE,
) -> FetchResult:
    """Download, verify and store one batch of due recordings; ``delete`` removes one from Twilio."""
    result = FetchResult()
    for item in claim(db, now, lease=lease, batch=batch):
        result.claimed += 1
        place = store_path(store, item, now)
        if place is None:
            result.invalid += 1
            log.error("twilio recording %r: not a RecordingSid; nothing downloaded", item.sid[:80])
            if not _store(db, item, status="invalid", problem="not a Twilio RecordingSid"):
                result.lost += 1
            continue
        uri, target = place
        partial = target.with_name(f".{target.name}.part")
        try:
            _size, sha256 = _download_with_retries(media, item, partial, retries, sleep)
        except DownloadError as exc:
            partial.unlink(missing_ok=True)
            result.failed += 1
            log.warning("twilio recording %s: download failed: %s", item.sid, exc)
            if not _store(db, item, status="pending", problem=f"download failed: {exc}"):
                result.lost += 1
            continue
        partial.replace(target)
        check = check_file(store, uri, item, sha256)
        if check.status != "verified":
            target.unlink(missing_ok=True)  # Twilio keeps the original; nothing to delete there
            result.invalid += 1
            log.warning("twilio recording %s: %s", item.sid, check.problem)
            if not _store(db, item, status="invalid", problem=check.problem, check=check):
                result.lost += 1
            continue
        if not _store(db, item, status="verified", problem=None, check=check, uri=uri):
            result.lost += 1
            continue
        result.verified += 1
        if delete is not None:
            try:
                delete(item.sid)
            except Exception as exc:  # our copy is safe; Twilio keeps one more until someone deletes it
                log.warning("twilio recording %s: verified but not deleted at Twilio: %s", item.sid, exc)
            else:
                result.deleted += 1
    return result


def _download_with_retries(
    media: TwilioMedia, item: Due, target: Path, retries: int, sleep: Callable[[float], None]
) -> tuple[int, str]:
    for attempt in range(retries + 1):
        try:
            return media.download(item.sid, item.channels, target)
        except DownloadError as exc:
            if not exc.retryable or attempt == retries:
                raise
            delay = min(MAX_BACKOFF_S, BACKOFF_S * 2**attempt)
            log.info("twilio recording %s: %s; retrying in %.0f s", item.sid, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def _store(
    db: Database,
    item: Due,
    *,
    status: str,
    problem: str | None,
    check: MediaCheck | None = None,
    uri: str | None = None,
) -> bool:
    values: dict[str, Any] = {"status": status, "problem": problem[:255] if problem else None}
    if check is not None:
        values.update(size_bytes=check.size_bytes, duration_s=check.duration_s, sha256=check.sha256)
    if uri is not None:
        values["uri"] = uri
    with db.transaction() as session:
        changed = session.execute(
            update(Recording)
            .where(
                Recording.id == item.id,
                Recording.status == "pending",
                Recording.verified_at == item.claimed_at,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(changed, "rowcount", 0))


def fetch_recordings(
    settings: Settings,
    db: Database,
    now: datetime,
    *,
    client: Any = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """``fetch`` with the configured account, store and deletion setting (what the scheduler job runs)."""
    account_sid, token = credentials(settings)
    media = TwilioMedia(api_base(settings), account_sid, token, session=session)
    delete: Callable[[str], None] | None = None
    if settings.twilio.delete_after_download:
        rest = client if client is not None else make_client(settings)

        def delete(sid: str) -> None:
            rest.recordings(sid).delete()

    return fetch(
        db,
        media,
        settings.path(settings.storage.recordings_dir),
        now,
        retries=settings.twilio.download_retries,
        delete=delete,
        sleep=sleep,
    )
