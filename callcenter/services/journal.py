"""Recording call reports so that nothing is lost when the database is down.

``Recorder.record`` hands a report to the recorder's writer thread and waits for the call id;
``Recorder.submit`` hands one over without waiting. The writer owns the process's writes: it takes
every report queued while the previous transaction ran and applies them together in one transaction
(group commit), in the order they were handed over. If the database cannot be reached, every report
of that batch goes to the spool folder (one JSON file each, written atomically) and ``replay``
applies the spooled reports later; because ``record_call`` is idempotent, a report applied twice
changes nothing. A report the database refuses is found by retrying the batch's reports one by one,
so only that report is spooled. ``close`` drains the queue: a report handed over is in the database
or in the spool once ``close`` returns (or at interpreter exit, if nobody closed the recorder).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from callcenter.db import Database
from callcenter.services.calls import CallSeen, Entry, from_payload, record_calls, to_payload
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


# At most this many reports go into one transaction; more wait for the next one.
WRITER_BATCH_SIZE = 200
# At most this many reports wait for the writer; a caller handing over one more waits for room
# (back-pressure: memory stays bounded and a load the database cannot keep up with slows the senders
# instead of piling up reports that a crash would lose).
MAX_QUEUED = 10000
# When nobody waits for an answer, the writer lets reports gather this long before a transaction
# (at most; a full batch, a ``record`` or a ``flush`` starts it at once). At a steady 100 webhooks a
# second per process a transaction then carries a few reports instead of one, and its fixed cost
# (transaction, lock, statements) is shared: writer CPU per incoming-call report is 2.0 ms in
# transactions of one report and 1.0 ms in transactions of five (measured in-process).
WRITER_LINGER_S = 0.02
# How long ``record`` waits for its call id. The report is not dropped when this runs out: it is
# still applied (or spooled) by the writer, the caller just goes on without the id.
RECORD_TIMEOUT_S = 10.0


@dataclass
class _Report:
    seen: CallSeen
    entries: Sequence[Entry]
    done: Future[int | None] | None = field(default=None)  # None: nobody waits (``submit``)

    def resolve(self, call_id: int | None) -> None:
        if self.done is not None:
            self.done.set_result(call_id)

    def fail(self, exc: BaseException) -> None:
        if self.done is not None:
            self.done.set_exception(exc)
        else:
            log.error(
                "call %s/%s could not be recorded", self.seen.channel, self.seen.external_id, exc_info=exc
            )


class Recorder:
    """The voice layer's write path: database first, spool on outage; one writer thread per recorder."""

    def __init__(
        self,
        db: Database,
        spool: Spool,
        *,
        region: str,
        clock: Clock,
        batch_size: int = WRITER_BATCH_SIZE,
        max_queued: int = MAX_QUEUED,
        timeout_s: float = RECORD_TIMEOUT_S,
        linger_s: float = WRITER_LINGER_S,
    ) -> None:
        self.db = db
        self.spool = spool
        self.region = region
        self.clock = clock
        self.batch_size = batch_size
        self.max_queued = max_queued
        self.timeout_s = timeout_s
        self.linger_s = linger_s
        self._wakeup = threading.Condition()
        self._waited_on = 0  # queued reports whose sender waits for the answer (``record``)
        self._flushing = 0  # threads in ``flush``
        self._queue: list[_Report] = []
        self._writer: threading.Thread | None = None
        self._closed = False
        self._writing = False

    def record(
        self, seen: CallSeen, entries: Sequence[Entry], *, timeout_s: float | None = None
    ) -> int | None:
        """Store the report; returns the call's id, or None if it was spooled.

        None also when the writer has not answered within ``timeout_s`` (the recorder's own when not
        given); the report is still written (or spooled) then. An error that is not the database's is
        raised here, as it was raised by ``record_call``.
        """
        wait = self.timeout_s if timeout_s is None else timeout_s
        report = _Report(seen, tuple(entries), Future())
        if not self._enqueue(report):
            self._write([report])  # closed: write in the caller's thread
        assert report.done is not None
        try:
            return report.done.result(wait)
        except TimeoutError:
            log.warning(
                "call %s/%s: no call id after %.1f s; the report stays queued",
                seen.channel,
                seen.external_id,
                wait,
            )
            return None

    def submit(self, seen: CallSeen, entries: Sequence[Entry]) -> None:
        """Hand the report to the writer without waiting: it reaches the database or the spool."""
        report = _Report(seen, tuple(entries))
        if not self._enqueue(report):
            self._write([report])

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every report handed over so far is written (or spooled); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._wakeup:
            self._flushing += 1
            self._wakeup.notify_all()  # a lingering writer starts now
            try:
                while self._queue or self._writing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._wakeup.wait(remaining)
            finally:
                self._flushing -= 1
        return True

    def close(self) -> None:
        """Write everything handed over so far and stop the writer; later reports are written inline."""
        with self._wakeup:
            self._closed = True
            writer = self._writer
            self._wakeup.notify_all()
        if writer is not None and writer is not threading.current_thread():
            writer.join()

    def _enqueue(self, report: _Report) -> bool:
        with self._wakeup:
            while len(self._queue) >= self.max_queued and not self._closed and self._writer is not None:
                self._wakeup.wait()  # the writer notifies when it takes a batch
            if self._closed:
                return False
            self._queue.append(report)
            self._waited_on += report.done is not None
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="recorder-writer", daemon=True)
                self._writer.start()
                # Daemon, so a recorder nobody closed cannot keep the process alive; drained at exit.
                atexit.register(_close_at_exit, weakref.ref(self))
            self._wakeup.notify_all()  # flush() waits on the same condition
        return True

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._queue and not self._closed:
                    self._wakeup.wait()
                if not self._queue:
                    return  # closed and drained
                self._linger()
                batch = self._queue[: self.batch_size]
                del self._queue[: self.batch_size]
                self._waited_on -= sum(report.done is not None for report in batch)
                self._writing = True
                self._wakeup.notify_all()  # room in the queue for senders held back
            started = time.perf_counter()
            try:
                self._write(batch)
                log.debug("wrote %d reports in %.1f ms", len(batch), (time.perf_counter() - started) * 1000)
            except BaseException as exc:  # never leave a caller waiting on a dead writer
                for report in batch:
                    if report.done is not None and not report.done.done():
                        report.fail(exc)
                log.exception("recorder writer failed on a batch of %d reports", len(batch))
            finally:
                with self._wakeup:
                    self._writing = False
                    self._wakeup.notify_all()

    def _linger(self) -> None:
        """Let fire-and-forget reports gather for up to ``linger_s`` (called holding the condition)."""
        deadline = time.monotonic() + self.linger_s
        while (
            len(self._queue) < self.batch_size
            and not (self._closed or self._waited_on or self._flushing)
            and (remaining := deadline - time.monotonic()) > 0
        ):
            self._wakeup.wait(remaining)

    def _write(self, batch: Sequence[_Report]) -> None:
        """Apply the batch in one transaction; spool it on outage; isolate what the database refuses."""
        try:
            with self.db.transaction() as session:
                call_ids = record_calls(
                    session,
                    [(report.seen, report.entries) for report in batch],
                    region=self.region,
                    now=self.clock(),
                )
        except (OperationalError, InterfaceError) as exc:  # cannot reach the database: spool them all
            for report in batch:
                self._spool(report, exc)
            return
        except Exception as exc:
            if len(batch) > 1:  # one report broke the batch: find it by writing each on its own
                for report in batch:
                    self._write([report])
            elif isinstance(exc, DBAPIError):  # the database refuses this report: spool it (as ever)
                self._spool(batch[0], exc)
            else:
                batch[0].fail(exc)
            return
        for report, call_id in zip(batch, call_ids, strict=True):
            report.resolve(call_id)

    def _spool(self, report: _Report, exc: Exception) -> None:
        try:
            path = self.spool.put(to_payload(report.seen, report.entries))
        except Exception as spool_error:
            report.fail(spool_error)
            return
        log.error(
            "database unavailable, call %s/%s spooled to %s: %s",
            report.seen.channel,
            report.seen.external_id,
            path.name,
            exc.__class__.__name__,
        )
        report.resolve(None)

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
                    record_calls(session, [(seen, entries)], region=self.region, now=self.clock())
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


def _close_at_exit(ref: weakref.ref[Recorder]) -> None:
    recorder = ref()
    if recorder is not None:
        recorder.close()


def recorder_for(settings: Settings, db: Database, clock: Clock) -> Recorder:
    """The recorder every process uses: the configured spool folder and phone region."""
    spool = Spool(settings.path(settings.storage.spool_dir))
    return Recorder(db, spool, region=settings.organisation.phone_region, clock=clock)
